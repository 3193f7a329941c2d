#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! Every string the code asks for exists in Russian and in English, and both files parse.

use fluent_bundle::FluentResource;
use loyalty_till::i18n::{I18n, Lang, message_ids};
use std::collections::BTreeSet;
use std::path::Path;

fn ids(lang: Lang) -> BTreeSet<String> {
    message_ids(lang.source()).into_iter().collect()
}

fn rust_sources(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("src readable") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(std::fs::read_to_string(&path).expect("source readable"));
        }
    }
}

/// Key-shaped literals that are no message: the screen names `--scenario` logs for the
/// screenshot script (`ui::screen_name`), spelled like the scenarios.
const NOT_KEYS: [&str; 3] = ["add-guest", "payment-choice", "shift-report"];

/// String literals in the code that name a message: arguments of the translation calls, and
/// any literal shaped like a key whose first word is one the locale files use.
fn keys_used_in_code(known_prefixes: &BTreeSet<String>) -> BTreeSet<String> {
    let mut sources = Vec::new();
    rust_sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut sources);
    let mut keys = BTreeSet::new();
    for source in &sources {
        for (i, _) in source.match_indices('"') {
            let rest = &source[i + 1..];
            let Some(end) = rest.find('"') else { continue };
            let literal = &rest[..end];
            let key_shaped = !literal.is_empty()
                && literal
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && literal.starts_with(|c: char| c.is_ascii_lowercase());
            if !key_shaped || NOT_KEYS.contains(&literal) {
                continue;
            }
            let before = &source[..i];
            let translation_call = [".t(", ".t_args(", "Notice::error(", "Notice::info(", "Notice::success("]
                .iter()
                .any(|call| before.ends_with(call));
            let prefix = literal.split('-').next().unwrap_or_default();
            if translation_call || (literal.contains('-') && known_prefixes.contains(prefix)) {
                keys.insert(literal.to_string());
            }
        }
    }
    keys
}

#[test]
fn both_languages_define_the_same_messages() {
    let ru = ids(Lang::Ru);
    let en = ids(Lang::En);
    assert!(
        ru.len() > 100,
        "the Russian file looks truncated: {} messages",
        ru.len()
    );
    let only_ru: Vec<_> = ru.difference(&en).collect();
    let only_en: Vec<_> = en.difference(&ru).collect();
    assert!(
        only_ru.is_empty() && only_en.is_empty(),
        "missing in en: {only_ru:?}; missing in ru: {only_en:?}"
    );
}

#[test]
fn every_key_the_code_uses_exists_in_both_languages() {
    let ru = ids(Lang::Ru);
    let prefixes: BTreeSet<String> = ru
        .iter()
        .filter_map(|id| id.split_once('-').map(|(p, _)| p.to_string()))
        .collect();
    let used = keys_used_in_code(&prefixes);
    assert!(
        used.len() > 80,
        "the key scan found too few keys ({}) to be trusted",
        used.len()
    );
    for lang in Lang::ALL {
        let defined = ids(lang);
        let missing: Vec<_> = used.iter().filter(|k| !defined.contains(*k)).collect();
        assert!(missing.is_empty(), "{lang:?} lacks {missing:?}");
    }
}

#[test]
fn locale_files_parse_cleanly() {
    for lang in Lang::ALL {
        if let Err((_, errors)) = FluentResource::try_new(lang.source().to_string()) {
            panic!("{lang:?} has Fluent errors: {errors:?}");
        }
    }
}

#[test]
fn messages_format_with_arguments_and_no_isolation_marks() {
    use loyalty_till::i18n::Arg;
    use loyalty_till::money::Kopecks;
    let ru = I18n::new(Lang::Ru);
    let text = ru.t_args(
        "done-spent-accrued",
        &[
            ("spent", Arg::Money(Kopecks(20_000))),
            ("accrued", Arg::Money(Kopecks(4_350))),
        ],
    );
    assert_eq!(text, "Списано 200,00 бонусов, начислено 43,50");
    assert_eq!(
        ru.t_args("guest-promotions-count", &[("count", Arg::Number(3))]),
        "3 акции"
    );
    assert_eq!(
        ru.t_args("guest-promotions-count", &[("count", Arg::Number(5))]),
        "5 акций"
    );
    let en = I18n::new(Lang::En);
    assert_eq!(en.t("guest-remove"), "Remove guest");
    assert_eq!(ru.t("guest-remove"), "Удалить гостя");
    assert_eq!(ru.t("payment-exact"), "Точная сумма");
    assert!(!text.contains('\u{2068}') && !text.contains('\u{2069}'));
}
