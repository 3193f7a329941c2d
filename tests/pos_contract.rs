#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The POS contract (`docs/pos-contract.openapi.json`, served by the till; `tests/pos.rs` checks
//! that every path it names is answered) keeps the
//! contract's own rules: it is OpenAPI 3 whose references all resolve, every call that changes
//! anything requires an `Idempotency-Key`, money and quantities are integers (never a float
//! anywhere), and every operation answers its errors as `Problem` bodies.

use serde_json::Value;
use std::collections::BTreeSet;

fn contract() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/pos-contract.openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every value in the document, with its JSON pointer.
fn walk<'a>(value: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((at.clone(), value));
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                walk(
                    child,
                    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

#[test]
fn references_resolve_and_operations_are_named_once() {
    let doc = contract();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut all = Vec::new();
    walk(&doc, String::new(), &mut all);
    let mut refs = 0;
    for (at, value) in &all {
        if let Some(target) = value.get("$ref").and_then(Value::as_str) {
            let pointer = target
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{at}: external $ref {target}"));
            assert!(
                doc.pointer(pointer).is_some(),
                "{at}: $ref {target} resolves to nothing"
            );
            refs += 1;
        }
    }
    assert!(refs > 20, "only {refs} references: the document looks cut short");
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else { continue };
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(
                operation["responses"]["200"].is_object(),
                "{method} {path}: no 200 answer"
            );
        }
    }
    for expected in [
        "pushOrder",
        "getLoyaltyResult",
        "reportPaid",
        "reportCancelled",
        "reportReturn",
    ] {
        assert!(ids.contains(expected), "{expected} missing from {ids:?}");
    }
}

#[test]
fn every_change_is_idempotent_and_every_error_a_problem() {
    let doc = contract();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else { continue };
            let parameters: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|p| p.iter().filter_map(|p| p["$ref"].as_str()).collect())
                .unwrap_or_default();
            if method != "get" {
                assert!(
                    parameters.contains(&"#/components/parameters/IdempotencyKey"),
                    "{method} {path} changes something without an Idempotency-Key"
                );
            }
            for (status, answer) in operation["responses"].as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        answer
                            .pointer("/content/application~1json/schema/$ref")
                            .and_then(Value::as_str),
                        Some("#/components/schemas/Problem"),
                        "{method} {path} {status} is not a Problem"
                    );
                }
            }
        }
    }
    let key = &doc["components"]["parameters"]["IdempotencyKey"];
    assert_eq!(
        (key["in"].as_str(), key["required"].as_bool()),
        (Some("header"), Some(true))
    );
}

#[test]
fn money_and_quantities_are_integers() {
    let doc = contract();
    let mut all = Vec::new();
    walk(&doc, String::new(), &mut all);
    let mut money = 0;
    for (at, value) in &all {
        assert_ne!(
            value.get("type").and_then(Value::as_str),
            Some("number"),
            "{at}: a float in the contract"
        );
        let description = value.get("description").and_then(Value::as_str).unwrap_or_default();
        if at.contains("/properties/") && (description.contains("kopecks") || description.contains("Thousandths")) {
            assert_eq!(value["type"].as_str(), Some("integer"), "{at}");
            assert_eq!(value["format"].as_str(), Some("int64"), "{at}");
            money += 1;
        }
    }
    assert!(money >= 15, "only {money} amounts found");
}
