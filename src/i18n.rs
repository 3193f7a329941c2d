//! Every user-visible string, from Fluent files in `locales/` (Russian first, English too).

use crate::money::Kopecks;
use crate::workflow::{Notice, NoticeArg};
use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};
use serde::{Deserialize, Serialize};

/// The languages the till speaks. Russian is the default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    Ru,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Ru, Lang::En];

    /// The Fluent source, compiled into the binary so a till never runs without its strings.
    pub fn source(self) -> &'static str {
        match self {
            Lang::Ru => include_str!("../locales/ru/main.ftl"),
            Lang::En => include_str!("../locales/en/main.ftl"),
        }
    }

    fn langid(self) -> unic_langid::LanguageIdentifier {
        match self {
            Lang::Ru => unic_langid::langid!("ru"),
            Lang::En => unic_langid::langid!("en"),
        }
    }
}

pub struct I18n {
    lang: Lang,
    bundle: FluentBundle<FluentResource>,
}

impl I18n {
    pub fn new(lang: Lang) -> I18n {
        let resource = match FluentResource::try_new(lang.source().to_string()) {
            Ok(resource) => resource,
            Err((resource, errors)) => {
                // A broken line must not take the till down; the test suite keeps the files clean.
                tracing::error!(?lang, ?errors, "locale file has errors");
                resource
            }
        };
        let mut bundle = FluentBundle::new(vec![lang.langid()]);
        // Unicode isolation marks would show as boxes in egui.
        bundle.set_use_isolating(false);
        if let Err(errors) = bundle.add_resource(resource) {
            tracing::error!(?lang, ?errors, "locale file has duplicate keys");
        }
        I18n { lang, bundle }
    }

    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The translation of `key`; the key itself if it is missing (a test forbids that).
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The translation of `key` with arguments: money as formatted text, counts as numbers.
    pub fn t_args(&self, key: &str, args: &[(&str, Arg)]) -> String {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            match value {
                Arg::Text(text) => fluent_args.set(*name, FluentValue::from(text.clone())),
                Arg::Money(amount) => fluent_args.set(*name, FluentValue::from(amount.to_string())),
                Arg::Number(n) => fluent_args.set(*name, FluentValue::from(*n)),
            }
        }
        self.format(key, Some(&fluent_args))
    }

    pub fn notice(&self, notice: &Notice) -> String {
        let args: Vec<(&str, Arg)> = notice
            .args
            .iter()
            .map(|(name, value)| {
                let arg = match value {
                    NoticeArg::Text(text) => Arg::Text(text.clone()),
                    NoticeArg::Money(amount) => Arg::Money(*amount),
                    NoticeArg::Number(n) => Arg::Number(*n),
                };
                (*name, arg)
            })
            .collect();
        let text = self.t_args(notice.key, &args);
        // A refusal of one card of several names the card before the reason.
        match notice.args.iter().find(|(name, _)| *name == "card") {
            Some((_, NoticeArg::Number(card))) => self.t_args(
                "notice-card-refused",
                &[("card", Arg::Number(*card)), ("reason", Arg::Text(text))],
            ),
            _ => text,
        }
    }

    fn format(&self, key: &str, args: Option<&FluentArgs>) -> String {
        let Some(pattern) = self.bundle.get_message(key).and_then(|m| m.value()) else {
            tracing::warn!(key, lang = ?self.lang, "missing translation");
            return key.to_string();
        };
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, args, &mut errors);
        if !errors.is_empty() {
            tracing::warn!(key, ?errors, "translation formatted with errors");
        }
        text.into_owned()
    }
}

pub enum Arg {
    Text(String),
    Money(Kopecks),
    Number(i64),
}

/// Message ids defined in a Fluent source, for the completeness tests.
pub fn message_ids(source: &str) -> Vec<String> {
    source
        .lines()
        .filter(|line| line.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter_map(|line| line.split_once('=').map(|(id, _)| id.trim().to_string()))
        .collect()
}
