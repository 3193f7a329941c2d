//! The API's OpenAPI 3.1 document, generated (utoipa) from the wire types (`crate::wire`) and
//! the handlers' `#[utoipa::path]` attributes, served at `/api/v1/openapi.json`. A unit test
//! holds it against the routes the router serves, both ways.

use super::api;
use crate::wire;
use std::sync::OnceLock;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

const DESCRIPTION: &str = "Loyalty ledger for several tills. Amounts are integers in kopecks (0 to 2^53-1). \
Every write carries an op_id made by the till: a repeat with the same op_id returns the first result, a repeat \
with other content is refused with 409. Every request except /health and /openapi.json needs a till token: \
Authorization: Bearer <token>. Request bodies are JSON (Content-Type: application/json, else 415), at most 64 KiB \
(else 413); every error is a JSON ErrorBody.";

/// Paths anyone may read, without a till token.
const PUBLIC: [&str; 2] = ["/api/v1/openapi.json", "/api/v1/health"];

#[derive(OpenApi)]
#[openapi(
    info(title = "loyalty-till server", version = "1", description = DESCRIPTION),
    paths(
        api::openapi,
        api::health,
        api::till,
        api::identify,
        api::enrolment,
        api::enrol,
        api::guest_card,
        api::calculate,
        api::open_holds,
        api::reset_holds,
        api::history,
        api::hold,
        api::void,
        api::commit,
        api::shared_hold,
        api::shared_commit,
        api::accrue,
        api::offline_payment,
        api::refund,
        api::refund_preview,
        api::search_checks,
        api::shift_report,
    ),
    components(schemas(wire::ErrorBody)),
    modifiers(&Conventions),
)]
struct Document;

/// What every operation shares: the till token (except the public ones) and the error answer.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "till",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.responses.insert(
            "Error".to_string(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(
                        "refused: 400 malformed, invalid_amount or control_character, 401 no token, 404 unknown \
                         (or another organisation's), 405 method, 409 conflict, 413 body too large, 415 not JSON, \
                         422 a rule of the programme; 5xx the server failed (a generic reason, the details are in \
                         its log)",
                    )
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            ),
        );
        doc.security = Some(vec![SecurityRequirement::new("till", Vec::<String>::new())]);
        for (path, item) in doc.paths.paths.iter_mut() {
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .insert("default".to_string(), RefOr::Ref(Ref::from_response_name("Error")));
                if PUBLIC.contains(&path.as_str()) {
                    operation.security = Some(Vec::new());
                }
            }
        }
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

/// The document as served, made once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document()
            .to_pretty_json()
            .unwrap_or_else(|error| format!("{{\"error\":\"openapi\",\"reason\":\"{error}\"}}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    /// Every (method, path) the document describes.
    fn documented() -> Vec<(Method, String)> {
        let doc = document();
        let mut operations = Vec::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::DELETE, &item.delete),
                (Method::PATCH, &item.patch),
                (Method::HEAD, &item.head),
                (Method::OPTIONS, &item.options),
            ];
            for (method, operation) in methods {
                if operation.is_some() {
                    operations.push((method, path.clone()));
                }
            }
        }
        operations.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
        operations
    }

    #[test]
    fn the_document_describes_exactly_the_routes_served() {
        let mut served: Vec<(Method, String)> = api::routes()
            .served()
            .iter()
            .map(|(method, path)| (method.clone(), path.to_string()))
            .collect();
        served.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
        let documented = documented();
        for route in &served {
            assert!(
                documented.contains(route),
                "{} {} is served but not documented",
                route.0,
                route.1
            );
        }
        for route in &documented {
            assert!(
                served.contains(route),
                "{} {} is documented but not served",
                route.0,
                route.1
            );
        }
        assert!(served.iter().any(|(_, path)| path == "/api/v1/offline-payments"));
    }

    #[test]
    fn every_operation_answers_errors_as_json_and_asks_for_a_token_unless_public() {
        let doc: serde_json::Value = serde_json::from_str(document_json()).unwrap_or_default();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        assert!(!paths.is_empty());
        for (path, item) in &paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                assert_eq!(
                    operation["responses"]["default"]["$ref"], "#/components/responses/Error",
                    "{method} {path}"
                );
                let public = operation["security"] == serde_json::json!([]);
                assert_eq!(public, PUBLIC.contains(&path.as_str()), "{method} {path}");
            }
        }
        let schemas = &doc["components"]["schemas"];
        for name in [
            "ErrorBody",
            "HoldRequest",
            "OfflinePaymentRequest",
            "Check",
            "Quote",
            "CardAnswer",
        ] {
            assert!(schemas[name].is_object(), "{name} is in the document");
        }
        assert_eq!(schemas["Amount"]["maximum"], serde_json::json!(wire::MAX_AMOUNT));
    }
}
