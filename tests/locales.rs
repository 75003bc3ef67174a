//! The catalogues in `locales/` agree: every language has every key, with the same arguments and the plural forms its language needs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each language's catalogue and the CLDR plural categories its selectors must offer.
const CATALOGUES: [(&str, &[&str]); 2] = [("en", &["one", "other"]), ("zh-CN", &["other"])];

/// One message of a catalogue: its arguments and, per plural selector, its variants.
#[derive(Debug, Default)]
struct Message {
    args: BTreeSet<String>,
    variants: BTreeSet<String>,
    selects: bool,
}

fn read(lang: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("locales")
        .join(lang)
        .join("main.ftl");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The messages of a Fluent file, by key (a message starts at a line `key = …`; indented lines continue it).
fn messages(source: &str) -> BTreeMap<String, Message> {
    let mut out: BTreeMap<String, Message> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in source.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let starts_message = !line.starts_with([' ', '}', '*', '['])
            && line.split_once('=').is_some_and(|(k, _)| {
                !k.trim().is_empty()
                    && k.trim()
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if starts_message {
            let key = line.split_once('=').map(|(k, _)| k.trim().to_string());
            let key = key.unwrap_or_default();
            assert!(!out.contains_key(&key), "{key} is defined twice");
            out.insert(key.clone(), Message::default());
            current = Some(key);
        }
        let Some(message) = current.as_ref().and_then(|k| out.get_mut(k)) else {
            panic!("a line outside any message: {line:?}");
        };
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            rest = &rest[i + 1..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .collect();
            message.args.insert(name);
        }
        if line.contains("->") {
            message.selects = true;
        }
        let trimmed = line.trim_start().trim_start_matches('*');
        if let Some(variant) = trimmed.strip_prefix('[').and_then(|v| v.split_once(']')) {
            message.variants.insert(variant.0.trim().to_string());
        }
    }
    out
}

#[test]
fn every_language_has_every_key_with_the_same_arguments() {
    let (base_lang, _) = CATALOGUES[0];
    let base = messages(&read(base_lang));
    assert!(base.len() > 100, "the English catalogue is read");
    for (lang, _) in &CATALOGUES[1..] {
        let other = messages(&read(lang));
        let missing: Vec<_> = base.keys().filter(|k| !other.contains_key(*k)).collect();
        let extra: Vec<_> = other.keys().filter(|k| !base.contains_key(*k)).collect();
        assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        assert!(
            extra.is_empty(),
            "{lang} has keys {base_lang} lacks: {extra:?}"
        );
        for (key, message) in &base {
            assert_eq!(
                message.args, other[key].args,
                "{key}: {lang} uses other arguments than {base_lang}"
            );
        }
    }
}

#[test]
fn plural_messages_have_each_languages_plural_forms() {
    let plural_keys: BTreeSet<String> = messages(&read("en"))
        .into_iter()
        .filter(|(_, m)| m.selects)
        .map(|(k, _)| k)
        .collect();
    assert!(plural_keys.contains("online-count") && plural_keys.contains("typing-many"));
    for (lang, categories) in CATALOGUES {
        let all = messages(&read(lang));
        for key in &plural_keys {
            let message = &all[key];
            assert!(message.selects, "{lang}: {key} is not a plural selection");
            for category in categories {
                assert!(
                    message.variants.contains(*category),
                    "{lang}: {key} lacks the plural form [{category}]"
                );
            }
        }
    }
}

#[test]
fn every_catalogue_parses_as_fluent() {
    for (lang, _) in CATALOGUES {
        if let Err((_, errors)) = fluent_bundle::FluentResource::try_new(read(lang)) {
            panic!("{lang}: {errors:?}");
        }
    }
}

/// The page's compiled catalogue (`build.rs`) writes every message as Fluent's own runtime does,
/// in each language, for numbers of each plural form, for words, and with arguments missing.
#[test]
fn the_compiled_catalogue_reads_as_fluent() {
    use chatroom::i18n::{tr, Lang, Value};
    use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};
    let mut compared = 0;
    for (lang, (tag, _)) in Lang::ALL.into_iter().zip(CATALOGUES) {
        let mut bundle = FluentBundle::new(vec![lang.code().parse().expect("a language tag")]);
        bundle.set_use_isolating(false);
        let resource = FluentResource::try_new(read(tag)).expect("the catalogue parses");
        bundle.add_resource(resource).expect("no key twice");
        for (key, message) in messages(&read(tag)) {
            let pattern = bundle
                .get_message(&key)
                .and_then(|m| m.value())
                .expect("a message with a value");
            let names: Vec<&str> = message.args.iter().map(String::as_str).collect();
            let mut cases: Vec<Vec<Value>> = [-1, 0, 1, 2, 3, 5, 11, 21, 100, 101]
                .into_iter()
                .map(|n| names.iter().map(|_| Value::Num(n)).collect())
                .collect();
            for word in ["Ann", "one", "other", "12"] {
                cases.push(names.iter().map(|_| Value::from(word)).collect());
            }
            cases.push(Vec::new());
            for values in cases {
                let args: Vec<(&str, Value)> = names.iter().copied().zip(values).collect();
                let mut fluent_args = FluentArgs::new();
                for (name, value) in &args {
                    fluent_args.set(
                        *name,
                        match value {
                            Value::Str(s) => FluentValue::from(s.to_string()),
                            Value::Num(n) => FluentValue::from(*n),
                        },
                    );
                }
                let mut errors = Vec::new();
                let fluent = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
                assert_eq!(tr(lang, &key, &args), fluent, "{tag}: {key} with {args:?}");
                compared += 1;
            }
        }
    }
    assert!(compared > 3000, "compared {compared} messages");
}

/// Keys the code names directly (`t("…")`, `Text::new("…")`, `tr(…, "…"`) are all in the catalogue.
#[test]
fn keys_the_code_names_exist() {
    let known = messages(&read("en"));
    let mut files = Vec::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut unknown = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or_default();
        for pattern in ["t(\"", "Text::new(\"", "lang.get(), \""] {
            for (i, _) in code.match_indices(pattern) {
                // `t("` alone, not the end of `get("` or `set("`.
                let before = code[..i].chars().next_back().unwrap_or(' ');
                if pattern == "t(\""
                    && (before.is_alphanumeric() || matches!(before, '_' | '.' | ':'))
                {
                    continue;
                }
                let rest = &code[i + pattern.len()..];
                let key = rest.split('"').next().unwrap_or_default();
                if !known.contains_key(key) {
                    unknown.push(format!("{}: {key}", file.display()));
                }
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "keys not in locales/en/main.ftl: {unknown:?}"
    );
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
