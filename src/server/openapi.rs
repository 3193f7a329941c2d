//! The API's OpenAPI 3.1 document, written by hand (no generator crate), served at
//! `/api/v1/openapi.json`. A test checks that every route of the router is described here.

pub const DOCUMENT: &str = r##"{
  "openapi": "3.1.0",
  "info": {
    "title": "loyalty-till server",
    "version": "1",
    "description": "Loyalty ledger for several tills. Amounts are integers in kopecks (0 to 2^53-1). Every write carries an op_id made by the till: a repeat with the same op_id returns the first result, a repeat with other content is refused with 409. Every request except /health and /openapi.json needs a till token: Authorization: Bearer <token>."
  },
  "servers": [{ "url": "/" }],
  "components": {
    "securitySchemes": { "till": { "type": "http", "scheme": "bearer" } },
    "schemas": {
      "Amount": { "type": "integer", "minimum": 0, "maximum": 9007199254740991, "description": "kopecks" },
      "OpId": { "type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[!-.0-9;-~]+$" },
      "Check": {
        "type": "object", "required": ["subtotal"], "additionalProperties": false,
        "properties": {
          "subtotal": { "$ref": "#/components/schemas/Amount" },
          "gift_codes": { "type": "array", "maxItems": 32, "items": { "type": "string" } }
        }
      },
      "Group": { "type": "object", "properties": { "id": { "type": "integer" }, "name": { "type": "string" }, "discount_bp": { "type": "integer" }, "accrual_bp": { "type": "integer" } } },
      "GuestCard": {
        "type": "object",
        "properties": {
          "guest_id": { "type": "integer" }, "name": { "type": "string" }, "phone_masked": { "type": "string" },
          "balance": { "$ref": "#/components/schemas/Amount" }, "available": { "$ref": "#/components/schemas/Amount" },
          "group": { "$ref": "#/components/schemas/Group" },
          "stamps": { "type": "array", "items": { "type": "object", "properties": { "card_name": { "type": "string" }, "collected": { "type": "integer" }, "needed": { "type": "integer" }, "reward": { "type": "string" } } } },
          "promotions": { "type": "array", "items": { "type": "object", "properties": { "name": { "type": "string" }, "description": { "type": "string" }, "ends_at": { "type": "integer" } } } }
        }
      },
      "Identification": {
        "type": "object",
        "properties": {
          "card": { "$ref": "#/components/schemas/GuestCard" },
          "gift": { "type": ["object", "null"], "properties": { "code": { "type": "string" }, "name": { "type": "string" }, "points": { "$ref": "#/components/schemas/Amount" } } }
        }
      },
      "Quote": {
        "type": "object",
        "properties": {
          "amount_due": { "$ref": "#/components/schemas/Amount" },
          "max_spend": { "$ref": "#/components/schemas/Amount" },
          "limits": { "type": "array", "items": { "type": "object", "properties": { "kind": { "enum": ["available", "check_percent", "daily_limit", "amount_due"] }, "amount": { "$ref": "#/components/schemas/Amount" } } } },
          "max_check_bp": { "type": "integer" }, "spend_step": { "$ref": "#/components/schemas/Amount" }, "accrual_bp": { "type": "integer" },
          "accrual_if_kept": { "$ref": "#/components/schemas/Amount" }, "accrual_if_max_spent": { "$ref": "#/components/schemas/Amount" }
        }
      },
      "Hold": { "type": "object", "properties": { "hold_id": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Amount" }, "expires_at": { "type": "integer" } } },
      "Payment": { "type": "object", "properties": { "spent": { "$ref": "#/components/schemas/Amount" }, "accrued": { "$ref": "#/components/schemas/Amount" }, "balance_after": { "$ref": "#/components/schemas/Amount" }, "new_group": { "type": ["string", "null"] }, "booked_at": { "type": "integer", "description": "the time the payment was booked at (Unix seconds)" }, "check_time": { "enum": ["used", "absent", "too_old", "in_future", "on_hold"], "description": "what the server did with the request's check_time: used; absent (none sent, booked now); too_old (older than the server's --max-check-age-hours, 72 by default) or in_future (more than 5 minutes ahead): booked at the server's time instead; on_hold: a payment on a hold is booked when committed" } } },
      "CheckTime": { "type": "integer", "description": "when the till closed the check (Unix seconds); a payment without a hold is booked at this time if it is at most --max-check-age-hours old and at most 5 minutes ahead of the server's clock" },
      "Refund": { "type": "object", "properties": { "amount": { "$ref": "#/components/schemas/Amount" }, "spend_returned": { "$ref": "#/components/schemas/Amount" }, "accrual_taken": { "$ref": "#/components/schemas/Amount" }, "unrecovered": { "$ref": "#/components/schemas/Amount" }, "balance_after": { "$ref": "#/components/schemas/Amount" } } },
      "History": { "type": "array", "items": { "type": "object", "properties": { "at": { "type": "integer" }, "kind": { "type": "string" }, "amount": { "type": "integer" }, "balance_after": { "$ref": "#/components/schemas/Amount" }, "note": { "type": "string" } } } },
      "Error": {
        "type": "object", "required": ["error", "reason"],
        "properties": {
          "error": { "type": "string", "description": "machine-readable code, e.g. over_maximum, operation_id_conflict, malformed_json" },
          "reason": { "type": "string" },
          "ledger": { "description": "the ledger's error, for tills that show their own message" }
        }
      }
    },
    "responses": {
      "Error": { "description": "refused: 400 malformed, 401 no token, 404 unknown (or another organisation's), 409 conflict, 413 body too large, 422 a rule", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
    },
    "parameters": {
      "guest": { "name": "guest", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } },
      "hold": { "name": "hold", "in": "path", "required": true, "schema": { "type": "integer", "minimum": 1 } }
    }
  },
  "security": [{ "till": [] }],
  "paths": {
    "/api/v1/openapi.json": { "get": { "summary": "This document", "security": [], "responses": { "200": { "description": "OpenAPI document" } } } },
    "/api/v1/health": { "get": { "summary": "Liveness and the server's clock", "security": [], "responses": { "200": { "description": "ok" } } } },
    "/api/v1/identify": {
      "post": {
        "summary": "Resolve a scanned or typed code (card, phone, app QR, gift code) to a guest card",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["kind", "payload"], "additionalProperties": false, "properties": { "kind": { "enum": ["qr", "barcode", "magnetic_card", "manual"] }, "payload": { "type": "string", "maxLength": 128 } } } } } },
        "responses": { "200": { "description": "the guest", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Identification" } } } }, "default": { "$ref": "#/components/responses/Error" } }
      }
    },
    "/api/v1/guests/{guest}": {
      "get": { "summary": "Guest card: balance, available, group, stamps, promotions, and the gifts waiting (codes masked)", "parameters": [{ "$ref": "#/components/parameters/guest" }],
        "responses": { "200": { "description": "the card", "content": { "application/json": { "schema": { "allOf": [{ "$ref": "#/components/schemas/GuestCard" }, { "type": "object", "properties": { "gifts": { "type": "array", "items": { "type": "object", "properties": { "code": { "type": "string", "description": "masked" }, "name": { "type": "string" }, "points": { "$ref": "#/components/schemas/Amount" } } } } } }] } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/guests/{guest}/calculate": {
      "post": { "summary": "The most the guest may spend on this check, every limit, and the accrual preview", "parameters": [{ "$ref": "#/components/parameters/guest" }],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["check"], "properties": { "check": { "$ref": "#/components/schemas/Check" } } } } } },
        "responses": { "200": { "description": "the quote", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Quote" } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/guests/{guest}/holds": {
      "get": { "summary": "The guest's open holds", "parameters": [{ "$ref": "#/components/parameters/guest" }],
        "responses": { "200": { "description": "holds", "content": { "application/json": { "schema": { "type": "array", "items": { "$ref": "#/components/schemas/Hold" } } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/guests/{guest}/holds/reset": {
      "post": { "summary": "Void every open hold of the guest", "parameters": [{ "$ref": "#/components/parameters/guest" }],
        "responses": { "200": { "description": "{\"voided\": n}" }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/guests/{guest}/history": {
      "get": { "summary": "The guest's operations, newest first", "parameters": [{ "$ref": "#/components/parameters/guest" }, { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 0, "maximum": 500 } }],
        "responses": { "200": { "description": "history", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/History" } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/till": {
      "get": { "summary": "The calling till and the server's time: the tills' cheap probe (401 for a token the server refuses)",
        "responses": { "200": { "description": "{\"org\": …, \"till\": …, \"now\": unix seconds}" }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/holds": {
      "post": { "summary": "Reserve bonuses for a payment (first phase); expires after the programme's hold time",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["op_id", "guest_id", "amount", "check"], "additionalProperties": false, "properties": { "op_id": { "$ref": "#/components/schemas/OpId" }, "guest_id": { "type": "integer" }, "amount": { "$ref": "#/components/schemas/Amount" }, "check": { "$ref": "#/components/schemas/Check" } } } } } },
        "responses": { "200": { "description": "the hold", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Hold" } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/holds/{hold}/void": {
      "post": { "summary": "Release a hold; voiding a voided or expired hold succeeds, a committed one is refused", "parameters": [{ "$ref": "#/components/parameters/hold" }],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["op_id"], "additionalProperties": false, "properties": { "op_id": { "$ref": "#/components/schemas/OpId" } } } } } },
        "responses": { "200": { "description": "{\"voided\": hold}" }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/payments": {
      "post": { "summary": "Close a paid check: commit the hold (possibly for less), accrue on the rest, redeem gifts, add stamps",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["op_id", "guest_id", "spent", "check"], "additionalProperties": false, "properties": { "op_id": { "$ref": "#/components/schemas/OpId" }, "guest_id": { "type": "integer" }, "hold_id": { "type": ["integer", "null"] }, "spent": { "$ref": "#/components/schemas/Amount" }, "check": { "$ref": "#/components/schemas/Check" }, "check_time": { "$ref": "#/components/schemas/CheckTime" } } } } } },
        "responses": { "200": { "description": "the receipt", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Payment" } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/accruals": {
      "post": { "summary": "Close a paid check without spending bonuses: the accrual (what an offline till sends later)",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["op_id", "guest_id", "check"], "additionalProperties": false, "properties": { "op_id": { "$ref": "#/components/schemas/OpId" }, "guest_id": { "type": "integer" }, "check": { "$ref": "#/components/schemas/Check" }, "check_time": { "$ref": "#/components/schemas/CheckTime" } } } } } },
        "responses": { "200": { "description": "the receipt", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Payment" } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/offline-payments": {
      "post": { "summary": "A check a till closed with bonuses while the server was away (owner's opt-in, capped by the till): the guest is debited what they still have, at most the amount due; spent in the receipt may be less than asked",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["op_id", "guest_id", "spent", "check"], "additionalProperties": false, "properties": { "op_id": { "$ref": "#/components/schemas/OpId" }, "guest_id": { "type": "integer" }, "spent": { "$ref": "#/components/schemas/Amount" }, "check": { "$ref": "#/components/schemas/Check" }, "check_time": { "$ref": "#/components/schemas/CheckTime" } } } } } },
        "responses": { "200": { "description": "the receipt", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Payment" } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    },
    "/api/v1/refunds": {
      "post": { "summary": "Return part or all of a paid check: bonuses spent on the returned part come back, its accrual is taken back",
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["op_id", "payment_op_id"], "additionalProperties": false, "properties": { "op_id": { "$ref": "#/components/schemas/OpId" }, "payment_op_id": { "$ref": "#/components/schemas/OpId" }, "payment_till": { "type": "string" }, "amount": { "$ref": "#/components/schemas/Amount" } } } } } },
        "responses": { "200": { "description": "the refund", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Refund" } } } }, "default": { "$ref": "#/components/responses/Error" } } }
    }
  }
}"##;
