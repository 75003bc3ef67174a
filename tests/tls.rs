//! TLS in the binary: pages over https (HTTP/2 offered), chat over wss, a Secure session cookie, a certificate reload that new connections see while open sockets stay, and the plain-HTTP redirect.

mod common;

use chatroom::protocol::{ClientFrame, ServerFrame};
use chatroom::server::config::Settings;
use chatroom::server::http::tls::Tls;
use common::{becomes, eventually, TestServer};
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// A self-signed certificate for `localhost` written to `dir`; returns its DER.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), c.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), c.signing_key.serialize_pem()).unwrap();
    c.cert.der().clone()
}

/// A TLS connection to `addr` as `localhost`, trusting `roots`, offering `alpn`.
async fn tls_connect(
    addr: SocketAddr,
    roots: &[CertificateDer<'static>],
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut store = RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake")
}

/// One HTTP/1.1 request over TLS (`Connection: close`); returns the whole response.
async fn https(
    addr: SocketAddr,
    roots: &[CertificateDer<'static>],
    method: &str,
    path: &str,
    body: &str,
) -> String {
    let mut s = tls_connect(addr, roots, &[b"http/1.1"]).await;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(common::WAIT, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// Joins `room` as `name` over https and opens a wss socket with the cookie; returns it once welcomed.
async fn wss_member(addr: SocketAddr, roots: &[CertificateDer<'static>], name: &str) -> Wss {
    let resp = https(
        addr,
        roots,
        "POST",
        "/api/join",
        &format!("room=lobby&name={name}&avatar=owl"),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let set_cookie = resp
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie")
        .to_string();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    let cookie = set_cookie
        .split_once(':')
        .and_then(|(_, v)| v.trim().split(';').next())
        .unwrap()
        .to_string();
    let tls = tls_connect(addr, roots, &[b"http/1.1"]).await;
    let mut req = format!("wss://localhost:{}/ws/lobby", addr.port())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("cookie", cookie.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    ws.send(Message::text(ClientFrame::Join { after: None }.encode()))
        .await
        .unwrap();
    loop {
        if let ServerFrame::Welcome { .. } = next_frame(&mut ws).await {
            return ws;
        }
    }
}

async fn next_frame(ws: &mut Wss) -> ServerFrame {
    loop {
        let msg = tokio::time::timeout(common::WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("socket open")
            .expect("no socket error");
        if let Message::Text(t) = msg {
            return ServerFrame::decode(t.as_str()).unwrap();
        }
    }
}

/// Sends `text` from `from` and waits until `to` receives it.
async fn chat(from: &mut Wss, to: &mut Wss, client_id: &str, text: &str) {
    let frame = ClientFrame::Send {
        client_id: client_id.into(),
        text: text.into(),
        reply_to: None,
    };
    from.send(Message::text(frame.encode())).await.unwrap();
    loop {
        if let ServerFrame::Message(m) = next_frame(to).await {
            if m.text == text {
                return;
            }
        }
    }
}

#[tokio::test]
async fn pages_and_chat_work_over_tls_and_a_reload_keeps_open_sockets() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path());
    let tls = Tls::load(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).unwrap();
    let server = TestServer::with_tls(Settings::default(), Some(tls.clone()), true).await;
    let roots = [first.clone()];

    // A page over https; HTTP/2 is offered to browsers that want it.
    let page = https(server.addr, &roots, "GET", "/", "").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html"));
    let h2 = tls_connect(server.addr, &roots, &[b"h2", b"http/1.1"]).await;
    assert_eq!(h2.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut client, conn) = h2::client::handshake(h2).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(format!("https://localhost:{}/", server.addr.port()))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(req, true).unwrap();
    let response = response.await.unwrap();
    assert_eq!(response.status(), 200, "a page over HTTP/2");
    // HTTP/2 names the host in its authority: the page's sockets may still go back to it.
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    let own = format!("wss://localhost:{}", server.addr.port());
    assert!(csp.contains(&own), "{csp}");
    let mut body = response.into_body();
    let mut page = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        page.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8_lossy(&page).contains("<html"));
    drop(client);

    // Chat over wss, both ways, with a message bigger than one TLS record.
    let mut ada = wss_member(server.addr, &roots, "Ada").await;
    let mut bob = wss_member(server.addr, &roots, "Bob").await;
    chat(&mut ada, &mut bob, "a1", "hello over TLS").await;
    chat(&mut bob, &mut ada, "b1", &"long ".repeat(400)).await;
    // A burst: many frames arrive in few TCP reads and TLS records; every one gets through.
    for i in 0..200 {
        let frame = ClientFrame::Send {
            client_id: format!("burst{i}"),
            text: format!("burst {i} {}", "x".repeat(i * 7)),
            reply_to: None,
        };
        ada.feed(Message::text(frame.encode())).await.unwrap();
    }
    ada.flush().await.unwrap();
    let mut got = 0;
    while got < 200 {
        match next_frame(&mut bob).await {
            ServerFrame::Message(m) if m.text.starts_with("burst ") => {
                assert!(m.text.starts_with(&format!("burst {got} ")), "{}", m.text);
                got += 1;
            }
            _ => {}
        }
    }

    // A new certificate: new connections get it, the open sockets go on.
    let second = write_cert(dir.path());
    tls.reload().unwrap();
    let both = [first.clone(), second.clone()];
    let fresh = tls_connect(server.addr, &both, &[b"http/1.1"]).await;
    let served = fresh.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(served, second, "a new connection sees the new certificate");
    drop(fresh);
    chat(&mut ada, &mut bob, "a2", "still here after the reload").await;
    chat(&mut bob, &mut ada, "b2", "me too").await;

    // The plain port redirects to https, path and query kept.
    let redirect = server.redirect_addr.unwrap();
    let mut s = TcpStream::connect(redirect).await.unwrap();
    s.write_all(b"GET /r/kitchen?x=1 HTTP/1.1\r\nHost: localhost:80\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 301"), "{out}");
    let location = format!("https://localhost:{}/r/kitchen?x=1", server.addr.port());
    assert!(
        out.to_ascii_lowercase()
            .contains(&format!("location: {location}")),
        "{out}"
    );

    // A plain-HTTP client on the TLS port gets no page.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(common::WAIT, plain.read_to_end(&mut out)).await;
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));

    // On shutdown the wss sockets get their 1012 close over TLS, and the server ends.
    let stopped = tokio::spawn(server.stop());
    loop {
        let msg = tokio::time::timeout(common::WAIT, ada.next())
            .await
            .expect("a close in time");
        match msg {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(u16::from(f.code), 1012);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    }
    drop((ada, bob));
    stopped.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_file_watch_reloads_a_replaced_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path());
    let tls = Tls::load(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let watch = tokio::spawn(
        tls.clone()
            .watch(std::time::Duration::from_millis(50), stop.clone()),
    );
    assert_eq!(tls.current(), Some(first));
    // Modification times can be coarse: let time pass so that the new files look newer (a
    // wait for the clock, not for a state of the watch).
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = write_cert(dir.path());
    let reloaded = || {
        let now = tls.current();
        async move { now }
    };
    becomes(
        common::WAIT,
        "the new certificate is loaded",
        Some(second),
        reloaded,
    )
    .await;
    stop.cancel();
    watch.await.unwrap();
}

#[tokio::test]
async fn the_binary_serves_tls_and_reloads_its_certificate_on_sighup() {
    use common::process::ServerProcess;
    let dir = tempfile::tempdir().unwrap();
    let first = write_cert(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let server = ServerProcess::start(
        &dir.path().join("chat.db"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let roots = [first.clone()];
    let page = https(server.addr, &roots, "GET", "/healthz", "").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    let mut ada = wss_member(server.addr, &roots, "Ada").await;
    let mut bob = wss_member(server.addr, &roots, "Bob").await;

    let second = write_cert(dir.path());
    // SAFETY: kill only sends a signal to the child we started.
    assert_eq!(
        unsafe { libc::kill(server.child.id() as i32, libc::SIGHUP) },
        0
    );
    let both = [first.clone(), second.clone()];
    eventually(common::WAIT, "the new certificate is served", || async {
        let conn = tls_connect(server.addr, &both, &[b"http/1.1"]).await;
        conn.get_ref().1.peer_certificates().unwrap()[0] == second
    })
    .await;
    chat(&mut ada, &mut bob, "a1", "the socket outlived the reload").await;
    assert!(server
        .log_lines()
        .iter()
        .any(|l| l.contains("TLS certificate reloaded")));
}
