//! The Autobahn WebSocket conformance cases, run by `kosoku` against an echo socket on the chat sockets' own decoder, writer and connection loop.
//!
//! Built with the `autobahn` feature only; `scripts/autobahn` runs it. The echo server runs in
//! this process (`ws::echo_route` on every path); `kosoku` (from `.venv/`, or `$KOSOKU`)
//! drives it and writes its report into `$AUTOBAHN_OUT` (default `target/tmp/autobahn`),
//! where `AUTOBAHN.md` gets the summary table that `scripts/autobahn --write` copies to
//! `docs/AUTOBAHN.md`.

mod common;

use chatroom::server::config::Settings;
use chatroom::server::net::route as ws;
use common::TestServer;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// The largest message of the suite is 16 MiB (cases 9.*); chat allows 16 KiB.
const MAX_MESSAGE: usize = 16 * 1024 * 1024 + 1024;

/// One case's outcome, as the summary counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    Informational,
    /// Compression (12.*, 13.*), which the server does not negotiate.
    Unimplemented,
    /// Anything else: FAILED, NON-STRICT, WRONG CODE, UNCLEAN, or UNIMPLEMENTED elsewhere.
    Other,
}

/// Sections of the suite, as Autobahn names them.
const SECTIONS: [(u32, &str); 11] = [
    (1, "Framing"),
    (2, "Pings/Pongs"),
    (3, "Reserved bits"),
    (4, "Opcodes"),
    (5, "Fragmentation"),
    (6, "UTF-8 handling"),
    (7, "Close handling"),
    (9, "Limits/performance"),
    (10, "Miscellaneous"),
    (12, "Compression (payloads)"),
    (13, "Compression (parameters)"),
];

fn outcome(id: &str, behavior: &str, close: &str) -> Outcome {
    let fine = |b: &str| b == "OK" || b == "INFORMATIONAL";
    let compression = id.starts_with("12.") || id.starts_with("13.");
    match (behavior, close) {
        ("OK", "OK") => Outcome::Ok,
        (b, c) if fine(b) && fine(c) => Outcome::Informational,
        ("UNIMPLEMENTED", _) if compression => Outcome::Unimplemented,
        _ => Outcome::Other,
    }
}

/// A case id as numbers, for sorting `9.10.1` after `9.2.1`.
fn numbers(id: &str) -> Vec<u32> {
    id.split('.')
        .map(|n| n.parse().unwrap_or(u32::MAX))
        .collect()
}

fn kosoku() -> PathBuf {
    std::env::var_os("KOSOKU")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/kosoku"))
}

/// Serves the echo socket on a free port of 127.0.0.1.
async fn echo_server() -> TestServer {
    let settings = Settings {
        max_frame_bytes: Some(MAX_MESSAGE),
        // No heartbeat frames in the middle of a case's expected echoes.
        ping_interval_secs: Some(3600),
        ..Settings::default()
    };
    TestServer::with_router(settings, |state| {
        axum::Router::new()
            .fallback(ws::echo_route)
            .with_state(state)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_autobahn_case_passes_on_the_echo_socket() {
    let kosoku = kosoku();
    assert!(
        kosoku.exists(),
        "{} is missing: run scripts/setup --test",
        kosoku.display()
    );
    let out = std::env::var_os("AUTOBAHN_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("autobahn"));
    let _ = std::fs::remove_dir_all(&out);
    let server = echo_server().await;
    let addr = server.addr;
    let run = {
        let out = out.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(kosoku)
                .args(["-p", "4", "-o"])
                .arg(&out)
                .arg(addr.to_string())
                .output()
        })
    };
    // Its exit status and output say only that some case is not OK (compression never is):
    // the report says which, and how.
    let run = run.await.unwrap().expect("kosoku runs");
    let log = [run.stdout, run.stderr].concat();
    std::fs::write(out.join("kosoku.log"), log).expect("kosoku made its report folder");
    let index = std::fs::read_to_string(out.join("index.json")).expect("kosoku wrote its report");
    let index: serde_json::Value = serde_json::from_str(&index).unwrap();
    let mut cases = Vec::new();
    for agent in index.as_object().expect("agents").values() {
        for (id, case) in agent.as_object().expect("cases") {
            let field = |name: &str| case[name].as_str().unwrap_or("?").to_string();
            let (behavior, close) = (field("behavior"), field("behaviorClose"));
            let code = case["remoteCloseCode"].as_u64();
            cases.push((numbers(id), id.clone(), behavior, close, code));
        }
    }
    cases.sort();
    assert!(!cases.is_empty(), "no case ran");

    let mut totals: BTreeMap<Outcome, usize> = BTreeMap::new();
    let mut sections: BTreeMap<u32, BTreeMap<Outcome, usize>> = BTreeMap::new();
    let mut notes = String::new();
    let mut others = Vec::new();
    for (n, id, behavior, close, code) in &cases {
        let o = outcome(id, behavior, close);
        *totals.entry(o).or_default() += 1;
        *sections.entry(n[0]).or_default().entry(o).or_default() += 1;
        let code = code.map_or("none".to_string(), |c| c.to_string());
        let line = format!("| {id} | {behavior} | {close} | {code} |\n");
        match o {
            Outcome::Informational => notes.push_str(&line),
            Outcome::Other => others.push(line),
            _ => {}
        }
    }
    let count = |o| totals.get(&o).copied().unwrap_or(0);
    let summary = format!(
        "autobahn: {} OK, {} INFORMATIONAL, {} UNIMPLEMENTED, {} other",
        count(Outcome::Ok),
        count(Outcome::Informational),
        count(Outcome::Unimplemented),
        count(Outcome::Other)
    );

    let mut doc = String::from(
        "# Autobahn conformance\n\n\
         The [Autobahn TestSuite](https://github.com/crossbario/autobahn-testsuite) cases, run by\n\
         [`kosoku`](https://pypi.org/project/kosoku/) against an echo socket on the chat sockets' own\n\
         decoder, writer and connection loop (`tests/autobahn.rs`, built with the `autobahn` feature\n\
         only). `scripts/test` runs them; `scripts/autobahn --write` regenerates this file.\n\
         Compression (12.\\*, 13.\\*) is not negotiated, so those cases are UNIMPLEMENTED.\n\n",
    );
    let _ = writeln!(doc, "**{summary}**\n");
    doc.push_str("| section | cases | OK | INFORMATIONAL | UNIMPLEMENTED | other |\n");
    doc.push_str("|---|--:|--:|--:|--:|--:|\n");
    for (section, counts) in &sections {
        let name = SECTIONS
            .iter()
            .find(|(n, _)| n == section)
            .map_or("?", |(_, name)| name);
        let get = |o| counts.get(&o).copied().unwrap_or(0);
        let _ = writeln!(
            doc,
            "| {section} {name} | {} | {} | {} | {} | {} |",
            counts.values().sum::<usize>(),
            get(Outcome::Ok),
            get(Outcome::Informational),
            get(Outcome::Unimplemented),
            get(Outcome::Other),
        );
    }
    let table = "| case | behaviour | close behaviour | server's close code |\n|---|---|---|---|\n";
    if !notes.is_empty() {
        let _ = write!(
            doc,
            "\nINFORMATIONAL cases (the spec leaves the outcome open):\n\n{table}{notes}"
        );
    }
    if !others.is_empty() {
        let _ = write!(doc, "\nFailing cases:\n\n{table}{}", others.concat());
    }
    std::fs::write(out.join("AUTOBAHN.md"), doc).unwrap();
    println!("{summary}");
    assert!(
        others.is_empty(),
        "cases not passed (details in {}/index.html):\n{}",
        out.display(),
        others.concat()
    );
}

/// A masked client frame with first byte `b0`.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7, 1, 2, 9];
    let mut f = vec![b0, 0x80 | payload.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    f
}

#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_echoed_before_a_bad_one_fails_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = echo_server().await;
    let addr = server.addr;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes();
    request.extend(client_frame(0x81, b"hi"));
    request.extend(client_frame(0x82, &[0, 255]));
    // RSV2 set, with no extension to give it a meaning.
    request.extend(client_frame(0xa1, b"no"));
    stream.write_all(&request).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut all),
    )
    .await
    .expect("the server closes")
    .unwrap();
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(all.starts_with(b"HTTP/1.1 101"));
    let frames = &all[head_end..];
    let echoes = [0x81, 2, b'h', b'i', 0x82, 2, 0, 255];
    assert_eq!(frames[..echoes.len()], echoes);
    let close = &frames[echoes.len()..];
    assert_eq!(close[0], 0x88);
    assert_eq!(u16::from_be_bytes([close[2], close[3]]), 1002);
}
