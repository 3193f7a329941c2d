//! The pages and their forms. Every handler starts from [`Ctx`]: the session (or the login
//! page), the language, the role check, and on POST the CSRF check.

use super::auth::{self, Session};
use super::db::{self, Role};
use super::{BackOffice, Tr, lang_of};
use crate::domain::{GuestId, IdentifierKind, LoyaltyError};
use crate::loyalty::engine::{Answer, Op};
use crate::loyalty::rules::{self, NewGroup, OpKind, ProgramSettings};
use crate::money::{Kopecks, parse_amount};
use crate::server::store::Caller;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) type St = State<Arc<BackOffice>>;
pub(super) type Fields = Form<HashMap<String, String>>;

/// Rows on a page of guests or of history.
const PAGE: i64 = 50;

pub fn routes() -> Router<Arc<BackOffice>> {
    Router::new()
        .route("/admin", get(super::account::admin_root))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/lang/{lang}", get(set_lang))
        .route("/admin/guests", get(guests).post(create_guest))
        .route("/admin/guests/new", get(new_guest))
        .route("/admin/guests/{id}", get(guest))
        .route("/admin/guests/{id}/identifiers", post(add_identifier))
        .route("/admin/guests/{id}/manual", post(manual))
        .route("/admin/guests/{id}/reset-holds", post(reset_holds))
        .route("/admin/guests/{id}/block", post(block))
        .route("/admin/guests/{id}/accounts", post(open_account))
        .route("/admin/groups", get(groups).post(create_group))
        .route("/admin/groups/{id}", get(group).post(edit_group))
        .route("/admin/programme", get(programme).post(save_programme))
        .route("/admin/tills", get(tills).post(create_till))
        .route("/admin/audit", get(audit_page))
        .route("/admin/tills/{till}/revoke", post(revoke_till))
        .route(
            "/admin/guests/import",
            get(super::import::import_page)
                .post(super::import::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/admin/guests/import/confirm", post(super::import::confirm))
        .route("/admin/guests/import/rejected.csv", get(super::import::rejected_csv))
        .route("/admin/guests/export.csv", get(super::import::export))
        .route("/admin/reports", get(super::reports::report_page))
        .route("/admin/reports.csv", get(super::reports::report_csv))
        .route(
            "/admin/setup",
            get(super::account::setup_page).post(super::account::setup),
        )
        .route(
            "/admin/account",
            get(super::account::account_page).post(super::account::change_password),
        )
        .route("/admin/guests/{id}/contact", post(super::account::edit_contact))
        .merge(super::rewards::routes())
}

// ----- Context, errors, layout -----

pub(super) struct Ctx {
    pub(super) tr: Tr,
    pub(super) session: Session,
}

impl Ctx {
    pub(super) fn caller(&self) -> Caller {
        Caller {
            org: self.session.org.clone(),
            till: "backoffice".to_string(),
        }
    }
}

/// What a handler answers instead of its page.
pub(super) enum Refusal {
    Login,
    Page(StatusCode, Markup),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Login => Redirect::to("/admin/login").into_response(),
            Refusal::Page(status, page) => (status, page).into_response(),
        }
    }
}

pub(super) type Page = Result<Response, Refusal>;

/// The session and language of a GET; managers only where `owner_only` is false.
pub(super) fn ctx(bo: &BackOffice, headers: &HeaderMap, owner_only: bool) -> Result<Ctx, Refusal> {
    let tr = Tr(lang_of(headers));
    let session = bo.sessions.find(headers).ok_or(Refusal::Login)?;
    let ctx = Ctx { tr, session };
    if owner_only && ctx.session.role != Role::Owner {
        tracing::warn!(
            user = ctx.session.user_id,
            "back office: a manager was refused an owner's page"
        );
        return Err(message(&ctx, StatusCode::FORBIDDEN, &tr.t("bo-err-owner-only")));
    }
    Ok(ctx)
}

/// Like [`ctx`], for a POST: the form's CSRF token must be the session's.
pub(super) fn ctx_post(
    bo: &BackOffice,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    owner_only: bool,
) -> Result<Ctx, Refusal> {
    let ctx = ctx(bo, headers, owner_only)?;
    let sent = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !auth::same_secret(sent, &ctx.session.csrf) {
        tracing::warn!(
            user = ctx.session.user_id,
            "back office: a form without the session's CSRF token refused"
        );
        return Err(message(&ctx, StatusCode::FORBIDDEN, &ctx.tr.t("bo-err-csrf")));
    }
    Ok(ctx)
}

pub(super) fn message(ctx: &Ctx, status: StatusCode, text: &str) -> Refusal {
    let body = html! {
        p.error role="alert" { (text) }
        p { a href="/admin/guests" { (ctx.tr.t("bo-back")) } }
    };
    Refusal::Page(
        status,
        layout(ctx.tr, Some(&ctx.session), &ctx.tr.t("bo-error-title"), body),
    )
}

/// An engine refusal on screen (the reason) and in the log (the kind, nothing personal).
pub(super) fn refused(ctx: &Ctx, error: &LoyaltyError) -> Refusal {
    let status = match error {
        LoyaltyError::Storage(_) | LoyaltyError::Unavailable(_) => {
            tracing::error!(%error, "back office: the store failed");
            StatusCode::INTERNAL_SERVER_ERROR
        }
        LoyaltyError::UnknownCode => StatusCode::NOT_FOUND,
        LoyaltyError::IdentifierTaken(_)
        | LoyaltyError::GroupThresholdClash(_)
        | LoyaltyError::AccountNameTaken(_)
        | LoyaltyError::OperationIdConflict => {
            tracing::info!(%error, "back office: refused");
            StatusCode::CONFLICT
        }
        _ => {
            tracing::info!(%error, "back office: refused");
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    message(ctx, status, &ctx.tr.error(error))
}

pub(super) fn bad_input(ctx: &Ctx, key: &str) -> Refusal {
    tracing::info!(field = key, "back office: bad input refused");
    message(ctx, StatusCode::UNPROCESSABLE_ENTITY, &ctx.tr.t(key))
}

pub(crate) const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#f6f6f4}
header{background:#23412f;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none}header .who{margin-left:auto;opacity:.85}
header form{display:inline}header button{background:none;border:1px solid #fff;color:#fff;padding:.2em .6em;cursor:pointer}
main{padding:1em;max-width:1100px}table{border-collapse:collapse;background:#fff;width:100%}
th,td{border:1px solid #ddd;padding:.35em .5em;text-align:left}td.num,th.num{text-align:right}
.error{background:#fde8e8;border:1px solid #e0a0a0;padding:.6em}.ok{background:#e6f4ea;border:1px solid #9c9;padding:.6em}
form.box,section.box{background:#fff;border:1px solid #ddd;padding:.8em;margin:.8em 0;overflow-x:auto}
label{display:block;margin:.3em 0}input,select{padding:.3em;font-size:1em}button{padding:.35em .9em;font-size:1em}
.muted{color:#777}.pager a{margin-right:1em}.scroll{overflow-x:auto;max-width:100%}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1em}";

pub(super) fn layout(tr: Tr, session: Option<&Session>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(if tr.0 == crate::i18n::Lang::En { "en" } else { "ru" }) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — " (tr.t("bo-title")) }
                style { (STYLE) }
            }
            body {
                header {
                    strong { (tr.t("bo-title")) }
                    @if let Some(session) = session {
                        a href="/admin/guests" { (tr.t("bo-nav-guests")) }
                        @if session.role == Role::Owner {
                            a href="/admin/groups" { (tr.t("bo-nav-groups")) }
                            a href="/admin/programme" { (tr.t("bo-nav-programme")) }
                            a href="/admin/tills" { (tr.t("bo-nav-tills")) }
                            a href="/admin/audit" { (tr.t("bo-nav-audit")) }
                            a href="/admin/rewards" { (tr.t("bo-nav-rewards")) }
                        }
                        a href="/admin/reports" { (tr.t("bo-nav-reports")) }
                        a href="/admin/account" { (tr.t("bo-nav-account")) }
                        span.who { (session.login) " (" (session.org) ", " (tr.t(role_key(session.role))) ")" }
                        form method="post" action="/admin/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { (tr.t("bo-logout")) }
                        }
                    }
                    a href="/admin/lang/ru" { "RU" }
                    a href="/admin/lang/en" { "EN" }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn role_key(role: Role) -> &'static str {
    match role {
        Role::Owner => "bo-role-owner",
        Role::Manager => "bo-role-manager",
    }
}

pub(super) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

pub(super) fn page(ctx: &Ctx, title: &str, body: Markup) -> Page {
    Ok(layout(ctx.tr, Some(&ctx.session), title, body).into_response())
}

pub(super) fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map(|v| v.trim()).unwrap_or_default()
}

pub(super) fn time(tr: Tr, at: i64) -> String {
    let _ = tr;
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

pub(super) fn money(kopecks: i64) -> String {
    Kopecks(kopecks).to_string()
}

/// A percentage as typed (`5`, `7,5`) in basis points.
fn percent(text: &str) -> Option<i64> {
    parse_amount(text).ok().map(|k| k.0)
}

fn percent_text(bp: i64) -> String {
    crate::money::amount_input_text(Kopecks(bp))
}

fn number(text: &str) -> Option<i64> {
    if text.is_empty() { Some(0) } else { text.parse().ok() }
}

// ----- Login -----

async fn login_page(State(bo): St, headers: HeaderMap) -> Response {
    let tr = Tr(lang_of(&headers));
    // Before the first owner exists the page points to the first-run page (a manager made by
    // `owner create --role manager` still signs in here).
    let first_run = matches!(super::account::owner_exists(&bo).await, Ok(false));
    login_form(tr, first_run.then(|| tr.t("bo-setup-pointer")), StatusCode::OK)
}

/// The login form; its CSRF token is a cookie it sets and a field it carries (no session yet).
fn login_form(tr: Tr, error: Option<String>, status: StatusCode) -> Response {
    let token = match auth::random_token() {
        Ok(token) => token,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let body = html! {
        @if let Some(error) = &error { p.error role="alert" { (error) } }
        form.box method="post" action="/admin/login" {
            input type="hidden" name="csrf" value=(token);
            label { (tr.t("bo-login")) br; input name="login" autocomplete="username" required autofocus; }
            label { (tr.t("bo-password")) br; input name="password" type="password" autocomplete="current-password" required; }
            button type="submit" { (tr.t("bo-sign-in")) }
        }
        p.muted { (tr.t("bo-login-hint")) }
    };
    let cookie = format!("lt_login={token}; Path=/admin; HttpOnly; SameSite=Strict");
    (
        status,
        [(header::SET_COOKIE, cookie)],
        layout(tr, None, &tr.t("bo-sign-in"), body),
    )
        .into_response()
}

async fn login(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Response {
    let tr = Tr(lang_of(&headers));
    let expected = auth::cookie(&headers, "lt_login").unwrap_or_default();
    if expected.is_empty() || !auth::same_secret(field(&form, "csrf"), &expected) {
        tracing::warn!("back office: a login without its CSRF token refused");
        return login_form(tr, Some(tr.t("bo-err-csrf")), StatusCode::FORBIDDEN);
    }
    let login = field(&form, "login").to_string();
    let password = form.get("password").cloned().unwrap_or_default();
    if bo.sessions.locked(&login) {
        tracing::warn!("back office: login locked after repeated failures");
        return login_form(tr, Some(tr.t("bo-err-locked")), StatusCode::TOO_MANY_REQUESTS);
    }
    let user = match db::find_user(&bo.store, &login).await {
        Ok(user) => user,
        Err(error) => {
            tracing::error!(%error, "back office: cannot read the accounts");
            return login_form(tr, Some(tr.t("bo-err-storage")), StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    // The hash is checked even for an unknown login, so timing does not tell which logins exist.
    let hash = match &user {
        Some(user) => user.password_hash.clone(),
        None => DUMMY_HASH
            .get_or_init(|| auth::hash_password("unknown login").unwrap_or_default())
            .clone(),
    };
    let good = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    match user {
        Some(user) if good => {
            bo.sessions.succeeded(&login);
            let Ok((token, _)) = bo.sessions.open(user.id, &user.login, &user.org, user.role) else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            tracing::info!(user = user.id, "back office: signed in");
            let cookie = format!("lt_session={token}; Path=/admin; HttpOnly; SameSite=Strict");
            ([(header::SET_COOKIE, cookie)], Redirect::to("/admin/guests")).into_response()
        }
        _ => {
            bo.sessions.failed(&login);
            tracing::info!("back office: a login failed");
            login_form(tr, Some(tr.t("bo-err-login")), StatusCode::UNAUTHORIZED)
        }
    }
}

/// A hash checked for unknown logins (it matches no account).
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

async fn logout(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    ctx_post(&bo, &headers, &form, false)?;
    bo.sessions.close(&headers);
    Ok((
        [(
            header::SET_COOKIE,
            "lt_session=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0".to_string(),
        )],
        Redirect::to("/admin/login"),
    )
        .into_response())
}

async fn set_lang(Path(lang): Path<String>) -> Response {
    let lang = if lang == "en" { "en" } else { "ru" };
    (
        [(
            header::SET_COOKIE,
            format!("lt_lang={lang}; Path=/admin; SameSite=Strict"),
        )],
        Redirect::to("/admin/guests"),
    )
        .into_response()
}

// ----- Guests -----

async fn guests(State(bo): St, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    let tr = ctx.tr;
    let q = field(&query, "q").to_string();
    // Pages start after (or before) a guest, not at a row number: see `db::Cursor`.
    let cursor = match (field(&query, "after").parse(), field(&query, "before").parse()) {
        (Ok(id), _) => db::Cursor::After(id),
        (_, Ok(id)) => db::Cursor::Before(id),
        _ => db::Cursor::First,
    };
    // A phone in any spelling is looked up normalised; anything else as a code, then as a name.
    let code = if q.is_empty() {
        None
    } else {
        Some(rules::identifier_value(IdentifierKind::Phone, &q).unwrap_or_else(|_| q.clone()))
    };
    let mut rows = db::search_guests(&bo.store, &ctx.session.org, code.as_deref(), &q, cursor, PAGE + 1)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    // One row more than a page tells whether there is more in the direction read.
    let beyond = rows.len() as i64 > PAGE;
    let (prev, more) = match cursor {
        db::Cursor::First => (false, beyond),
        db::Cursor::After(_) => (true, beyond),
        db::Cursor::Before(_) => {
            if beyond {
                rows.remove(0);
            }
            (beyond, true)
        }
    };
    rows.truncate(PAGE as usize);
    let (first_id, last_id) = (rows.first().map(|g| g.id), rows.last().map(|g| g.id));
    let body = html! {
        form.box method="get" action="/admin/guests" {
            input name="q" value=(q) placeholder=(tr.t("bo-search-hint")) size="40" autofocus;
            " " button type="submit" { (tr.t("bo-search")) }
            " " a href="/admin/guests/new" { (tr.t("bo-new-guest")) }
            @if ctx.session.role == Role::Owner { " " a #import href="/admin/guests/import" { (tr.t("bo-imp-link")) } }
        }
        @if rows.is_empty() {
            p.muted { (tr.t("bo-no-guests")) }
        } @else {
            table {
                tr { th { (tr.t("bo-name")) } th { (tr.t("bo-phone")) } th { (tr.t("bo-group")) } th.num { (tr.t("bo-balance")) } }
                @for g in &rows {
                    tr {
                        td {
                            a href={ "/admin/guests/" (g.id) } { (display_name(tr, &g.name)) }
                            @if let Some(account) = &g.account { " · " span.muted { (account) } }
                        }
                        td { (g.phone.clone().unwrap_or_default()) }
                        td { (g.group) }
                        td.num { (money(g.balance)) }
                    }
                }
            }
        }
        p.pager {
            @if let (true, Some(id)) = (prev, first_id) { a href={ "/admin/guests?q=" (urlencode(&q)) "&before=" (id) } { "← " (tr.t("bo-prev")) } }
            @if let (true, Some(id)) = (more, last_id) { a href={ "/admin/guests?q=" (urlencode(&q)) "&after=" (id) } { (tr.t("bo-next")) " →" } }
        }
    };
    page(&ctx, &tr.t("bo-nav-guests"), body)
}

pub(super) fn display_name(tr: Tr, name: &str) -> String {
    if name.is_empty() {
        tr.t("bo-no-name")
    } else {
        name.to_string()
    }
}

pub(super) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

const CARD_KINDS: [IdentifierKind; 4] = [
    IdentifierKind::CardBarcode,
    IdentifierKind::MagneticStripe,
    IdentifierKind::ManualCode,
    IdentifierKind::AppQr,
];

fn kind_key(kind: &str) -> &'static str {
    match kind {
        "card_barcode" => "bo-kind-card-barcode",
        "magnetic_stripe" => "bo-kind-magnetic-stripe",
        "manual_code" => "bo-kind-manual-code",
        "app_qr" => "bo-kind-app-qr",
        _ => "bo-kind-phone",
    }
}

fn kind_select(tr: Tr) -> Markup {
    html! {
        select name="kind" {
            @for kind in CARD_KINDS { option value=(kind.as_str()) { (tr.t(kind_key(kind.as_str()))) } }
        }
    }
}

async fn new_guest(State(bo): St, headers: HeaderMap) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    new_guest_page(&bo, &ctx, &HashMap::new(), None).await
}

/// The new guest's form, filled with what was typed and the reason it was refused, if it was:
/// a refusal never throws away what the owner typed.
async fn new_guest_page(
    bo: &BackOffice,
    ctx: &Ctx,
    typed: &HashMap<String, String>,
    refusal: Option<(StatusCode, String)>,
) -> Page {
    let tr = ctx.tr;
    let groups = db::groups(&bo.store).await.map_err(|e| refused(ctx, &e))?;
    if groups.is_empty() {
        return Err(message(ctx, StatusCode::CONFLICT, &tr.t("bo-err-no-groups")));
    }
    let kind = field(typed, "kind");
    let group = field(typed, "group");
    let body = html! {
        @if let Some((_, reason)) = &refusal { p.error role="alert" { (reason) } }
        form.box method="post" action="/admin/guests" {
            (csrf(&ctx.session))
            // A keyboard-wedge scanner ends the card with Enter: that must not send a form whose
            // name and phone are still to be typed. The form's first submit button, disabled,
            // turns Enter's implicit submission off (the page may run no script); «Создать»
            // sends it.
            input type="submit" disabled hidden aria-hidden="true" tabindex="-1";
            label { (tr.t("bo-name")) br; input name="name" maxlength="200" value=(field(typed, "name")); }
            label { (tr.t("bo-phone")) br;
                input name="phone" type="tel" placeholder="+7 900 000-00-00" value=(field(typed, "phone"));
            }
            label { (tr.t("bo-card")) br;
                select name="kind" {
                    @for k in CARD_KINDS {
                        option value=(k.as_str()) selected[k.as_str() == kind] { (tr.t(kind_key(k.as_str()))) }
                    }
                }
                " " input name="card" placeholder=(tr.t("bo-card-hint")) value=(field(typed, "card"));
            }
            label { (tr.t("bo-group")) br;
                select name="group" {
                    @for g in &groups {
                        option value=(g.id) selected[g.id.to_string() == group] { (g.rules.name) }
                    }
                }
            }
            button type="submit" { (tr.t("bo-create")) }
        }
    };
    let status = refusal.map_or(StatusCode::OK, |(status, _)| status);
    Ok((status, layout(tr, Some(&ctx.session), &tr.t("bo-new-guest"), body)).into_response())
}

async fn create_guest(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    match enrol_from_form(&bo, &ctx, &form).await {
        Ok(id) => {
            tracing::info!(guest = id, user = ctx.session.user_id, "back office: guest enrolled");
            Ok(Redirect::to(&format!("/admin/guests/{id}")).into_response())
        }
        Err(refusal) => new_guest_page(&bo, &ctx, &form, Some(refusal)).await,
    }
}

/// Enrols the guest the form describes, or says why not (logged here, shown by the caller).
async fn enrol_from_form(
    bo: &BackOffice,
    ctx: &Ctx,
    form: &HashMap<String, String>,
) -> Result<i64, (StatusCode, String)> {
    let bad = |key: &str| {
        tracing::info!(field = key, "back office: bad input refused");
        (StatusCode::UNPROCESSABLE_ENTITY, ctx.tr.t(key))
    };
    let name = rules::guest_name(field(form, "name")).map_err(|_| bad("bo-err-name"))?;
    let phone = Some(field(form, "phone").to_string()).filter(|p| !p.is_empty());
    let card = field(form, "card");
    let card = if card.is_empty() {
        None
    } else {
        let kind = IdentifierKind::parse(field(form, "kind")).ok_or_else(|| bad("bo-err-kind"))?;
        Some((kind, card.to_string()))
    };
    if phone.is_none() && card.is_none() {
        return Err(bad("bo-err-phone-or-card"));
    }
    let group_id: i64 = field(form, "group").parse().map_err(|_| bad("bo-err-group"))?;
    let enrol_detail = [
        phone.as_deref().map(crate::mask::mask_phone),
        card.as_ref().map(|(_, value)| crate::mask::mask_code(value)),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    let op = Op::Enrol {
        name,
        phone,
        card,
        group_id,
    };
    let entry = audit_entry(bo, ctx, "enrol", None, enrol_detail, "");
    let logged = db::Audit {
        org: ctx.session.org.clone(),
        op_key: None,
        // The new guest's id is the enrolment's answer.
        entry: Box::new(move |answer| db::AuditEntry {
            guest_id: match answer {
                Answer::Id(id) => Some(*id),
                _ => None,
            },
            ..entry.clone()
        }),
    };
    let refusal = |error: &LoyaltyError| match refused(ctx, error) {
        Refusal::Page(status, _) => (status, ctx.tr.error(error)),
        Refusal::Login => (StatusCode::UNAUTHORIZED, ctx.tr.error(error)),
    };
    match bo.store.run_audited(&ctx.caller(), op, (bo.clock)(), logged).await {
        Ok(Answer::Id(id)) => Ok(id),
        Ok(other) => Err(refusal(&crate::loyalty::engine::unexpected(other))),
        Err(error) => Err(refusal(&error)),
    }
}

async fn guest(
    State(bo): St,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    let tr = ctx.tr;
    let now = (bo.clock)();
    let Some(g) = db::guest_page(&bo.store, &ctx.session.org, id, now)
        .await
        .map_err(|e| refused(&ctx, &e))?
    else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    let page_no: i64 = field(&query, "page").parse().unwrap_or(0).max(0);
    let history = db::history(&bo.store, id, PAGE + 1, page_no * PAGE)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    let more = history.len() as i64 > PAGE;
    let changes = db::guest_audit(&bo.store, &ctx.session.org, id)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    let op_id = auth::random_token().map_err(|e| refused(&ctx, &e))?;
    let done = field(&query, "done");
    let body = html! {
        @if !done.is_empty() { p.ok role="status" { (tr.t(done_key(done))) } }
        div.grid {
            section.box {
                p { (tr.t("bo-phone")) ": " (g.guest.phone.clone().unwrap_or_default()) }
                p { (tr.t("bo-group")) ": " (g.guest.group) }
                p { (tr.t("bo-since")) ": " (time(tr, g.created_at)) }
                p { strong { (tr.t("bo-balance")) ": " span #balance { (money(g.guest.balance)) } } }
                p { (tr.t("bo-available")) ": " span #available { (money(g.guest.balance - g.held)) } }
                @if g.blocked { p.error #blocked { (tr.t("bo-blocked")) } }
                form method="post" action={ "/admin/guests/" (id) "/block" } {
                    (csrf(&ctx.session))
                    input type="hidden" name="blocked" value=(if g.blocked { "0" } else { "1" });
                    button type="submit" { (tr.t(if g.blocked { "bo-unblock" } else { "bo-block" })) }
                }
            }
            form.box method="post" action={ "/admin/guests/" (id) "/manual" } {
                h2 { (tr.t("bo-manual")) }
                (csrf(&ctx.session))
                input type="hidden" name="op_id" value=(op_id);
                label { select name="kind" {
                    option value="credit" { (tr.t("bo-credit")) }
                    option value="debit" { (tr.t("bo-debit")) }
                } }
                label { (tr.t("bo-amount")) br; input name="amount" inputmode="decimal" required; }
                label { (tr.t("bo-reason")) br; input name="reason" required maxlength="200"; }
                button type="submit" { (tr.t("bo-apply")) }
            }
        }
        (accounts_box(&ctx, id, &g))
        // The name and phone are the person's: changed on the main account.
        @if g.account_of.is_none() {
            (super::account::contact_form(&ctx, id, &g.guest.name, g.guest.phone.as_deref()))
        }
        section.box {
            h2 { (tr.t("bo-holds")) }
            @if g.holds.is_empty() { p.muted { (tr.t("bo-no-holds")) } } @else {
                table {
                    tr { th { (tr.t("bo-hold-created")) } th { (tr.t("bo-hold-expires")) } th { (tr.t("bo-till")) } th.num { (tr.t("bo-amount")) } }
                    @for h in &g.holds {
                        tr { td { (time(tr, h.created_at)) } td { (time(tr, h.expires_at)) } td { (h.till) } td.num { (money(h.amount)) } }
                    }
                }
                form method="post" action={ "/admin/guests/" (id) "/reset-holds" } {
                    (csrf(&ctx.session))
                    p { button type="submit" { (tr.t("bo-reset-holds")) } " " span.muted { (tr.t("bo-reset-holds-hint")) } }
                }
            }
        }
        p { a #rewards-link href={ "/admin/guests/" (id) "/rewards" } { (tr.t("bo-rw-guest-link")) } }
        section.box {
            h2 { (tr.t("bo-identifiers")) }
            table {
                @for (kind, value) in &g.identifiers { tr { td { (tr.t(kind_key(kind))) } td { (value) } } }
            }
            form method="post" action={ "/admin/guests/" (id) "/identifiers" } {
                (csrf(&ctx.session))
                p { (kind_select(tr)) " " input name="value" required placeholder=(tr.t("bo-card-hint"));
                    " " button type="submit" { (tr.t("bo-add")) } }
            }
        }
        section.box {
            h2 { (tr.t("bo-history")) }
            @if history.is_empty() { p.muted { (tr.t("bo-no-history")) } } @else {
                table #history {
                    tr { th { (tr.t("bo-when")) } th { (tr.t("bo-operation")) } th.num { (tr.t("bo-check")) } th.num { (tr.t("bo-amount")) } th.num { (tr.t("bo-balance-after")) } th { (tr.t("bo-till")) } th { (tr.t("bo-note")) } }
                    @for h in history.iter().take(PAGE as usize) {
                        tr {
                            td { (time(tr, h.at)) }
                            td { (tr.t(op_key(&h.kind))) }
                            td.num { @if let Some(check) = h.check { (money(check)) } }
                            td.num { (money(h.amount)) }
                            td.num { (money(h.balance_after)) }
                            td { (h.till) }
                            td { (h.note) }
                        }
                    }
                }
            }
            p.pager {
                @if page_no > 0 { a href={ "/admin/guests/" (id) "?page=" (page_no - 1) } { "← " (tr.t("bo-prev")) } }
                @if more { a href={ "/admin/guests/" (id) "?page=" (page_no + 1) } { (tr.t("bo-next")) " →" } }
            }
        }
        section.box #changes {
            h2 { (tr.t("bo-nav-audit")) }
            @if changes.is_empty() { p.muted { (tr.t("bo-audit-none")) } } @else { (audit_table(tr, &changes, false)) }
        }
    };
    let title = match &g.guest.account {
        Some(account) => format!("{} · {account}", display_name(tr, &g.guest.name)),
        None => display_name(tr, &g.guest.name),
    };
    page(&ctx, &title, body)
}

/// The person's bonus accounts, each a link with its balance, and the form that opens another.
fn accounts_box(ctx: &Ctx, id: GuestId, g: &db::GuestPage) -> Markup {
    let tr = ctx.tr;
    let main = g.account_of.unwrap_or(id);
    let account_label = |row: &db::GuestRow| row.account.clone().unwrap_or_else(|| tr.t("bo-account-main"));
    html! {
        section.box #accounts {
            h2 { (tr.t("bo-accounts")) }
            @if g.accounts.len() > 1 {
                table {
                    tr { th { (tr.t("bo-account")) } th.num { (tr.t("bo-balance")) } }
                    @for row in &g.accounts {
                        tr {
                            td { @if row.id == id { strong { (account_label(row)) } } @else {
                                a href={ "/admin/guests/" (row.id) } { (account_label(row)) } } }
                            td.num { (money(row.balance)) }
                        }
                    }
                }
            } @else {
                p.muted { (tr.t("bo-accounts-one")) }
            }
            form method="post" action={ "/admin/guests/" (main) "/accounts" } {
                (csrf(&ctx.session))
                p { input name="name" required maxlength="60" placeholder=(tr.t("bo-account-name-hint"));
                    " " button type="submit" { (tr.t("bo-account-open")) } }
            }
        }
    }
}

/// Opens another bonus account of the guest and shows its page, where its cards are added.
async fn open_account(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let name = field(&form, "name").trim().to_string();
    let detail = super::in_both_languages(|tr| format!("{}: {name}", tr.t("bo-account")));
    let logged = logged(&bo, &ctx, "account_open", Some(id), detail, "", None);
    let op = Op::OpenAccount { guest: id, name };
    let account = match bo.store.run_audited(&ctx.caller(), op, (bo.clock)(), logged).await {
        Ok(Answer::Id(account)) => account,
        Ok(other) => return Err(refused(&ctx, &crate::loyalty::engine::unexpected(other))),
        Err(error) => return Err(refused(&ctx, &error)),
    };
    tracing::info!(
        guest = id,
        account,
        user = ctx.session.user_id,
        "back office: account opened"
    );
    Ok(Redirect::to(&format!("/admin/guests/{account}?done=account")).into_response())
}

fn done_key(done: &str) -> &'static str {
    match done {
        "manual" => "bo-done-manual",
        "holds" => "bo-done-holds",
        "blocked" => "bo-done-blocked",
        "contact" => "bo-done-contact",
        "account" => "bo-done-account",
        _ => "bo-done-identifier",
    }
}

fn op_key(kind: &str) -> &'static str {
    match kind {
        "accrual" => "bo-op-accrual",
        "spend" => "bo-op-spend",
        "manual_credit" => "bo-op-manual-credit",
        "manual_debit" => "bo-op-manual-debit",
        "refund_spend" => "bo-op-refund-spend",
        _ => "bo-op-refund-accrual",
    }
}

async fn add_identifier(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let kind = IdentifierKind::parse(field(&form, "kind")).ok_or_else(|| bad_input(&ctx, "bo-err-kind"))?;
    let value = field(&form, "value").to_string();
    // The audit log keeps the kind and the value masked, as every log does.
    let masked = if matches!(kind, IdentifierKind::Phone) {
        crate::mask::mask_phone(&value)
    } else {
        crate::mask::mask_code(&value)
    };
    let detail = super::in_both_languages(|tr| format!("{}: {masked}", tr.t(kind_key(kind.as_str()))));
    let logged = logged(&bo, &ctx, "identifier_add", Some(id), detail, "", None);
    let op = Op::AddIdentifier { guest: id, kind, value };
    bo.store
        .run_audited(&ctx.caller(), op, (bo.clock)(), logged)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(guest = id, user = ctx.session.user_id, "back office: identifier added");
    Ok(Redirect::to(&format!("/admin/guests/{id}?done=identifier")).into_response())
}

async fn manual(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let kind = match field(&form, "kind") {
        "credit" => OpKind::ManualCredit,
        "debit" => OpKind::ManualDebit,
        _ => return Err(bad_input(&ctx, "bo-err-kind")),
    };
    let amount = parse_amount(field(&form, "amount")).map_err(|_| bad_input(&ctx, "bo-err-amount"))?;
    let reason = field(&form, "reason");
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(bad_input(&ctx, "bo-err-reason"));
    }
    let op_id = field(&form, "op_id");
    if op_id.len() < 16 || op_id.len() > 80 || !op_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad_input(&ctx, "bo-err-op-id"));
    }
    let caller = ctx.caller();
    let op_key = caller.op(op_id);
    let op = Op::Manual {
        op_key: op_key.clone(),
        guest: id,
        kind,
        amount,
        note: format!("{}: {reason}", ctx.session.login),
    };
    let logged = logged(
        &bo,
        &ctx,
        kind.as_str(),
        Some(id),
        amount.to_string(),
        reason,
        Some(&op_key),
    );
    bo.store
        .run_audited(&caller, op, (bo.clock)(), logged)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(
        guest = id,
        user = ctx.session.user_id,
        kind = kind.as_str(),
        "back office: manual change"
    );
    Ok(Redirect::to(&format!("/admin/guests/{id}?done=manual")).into_response())
}

async fn reset_holds(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let entry = audit_entry(&bo, &ctx, "reset_holds", Some(id), String::new(), "");
    let logged = db::Audit {
        org: ctx.session.org.clone(),
        op_key: None,
        // How many holds were released is the reset's answer.
        entry: Box::new(move |answer| {
            let released = match answer {
                Answer::Count(n) => i64::try_from(*n).unwrap_or(i64::MAX),
                _ => 0,
            };
            db::AuditEntry {
                detail: super::in_both_languages(|tr| {
                    tr.t_args("bo-audit-released", &[("count", crate::i18n::Arg::Number(released))])
                }),
                ..entry.clone()
            }
        }),
    };
    let op = Op::ResetHolds {
        op_key: None,
        guest: id,
    };
    let released = bo
        .store
        .run_audited(&ctx.caller(), op, (bo.clock)(), logged)
        .await
        .and_then(Answer::into_count)
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(
        guest = id,
        user = ctx.session.user_id,
        released,
        "back office: holds reset"
    );
    Ok(Redirect::to(&format!("/admin/guests/{id}?done=holds")).into_response())
}

async fn block(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let blocked = match field(&form, "blocked") {
        "1" => true,
        "0" => false,
        _ => return Err(bad_input(&ctx, "bo-err-kind")),
    };
    let action = if blocked { "block" } else { "unblock" };
    let logged = logged(&bo, &ctx, action, Some(id), String::new(), "", None);
    bo.store
        .run_audited(
            &ctx.caller(),
            Op::SetBlocked { guest: id, blocked },
            (bo.clock)(),
            logged,
        )
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(
        guest = id,
        user = ctx.session.user_id,
        blocked,
        "back office: block status changed"
    );
    Ok(Redirect::to(&format!("/admin/guests/{id}?done=blocked")).into_response())
}

// ----- Groups -----

fn group_form(ctx: &Ctx, action: &str, g: Option<&NewGroup>) -> Markup {
    let tr = ctx.tr;
    let value = |f: fn(&NewGroup) -> String| g.map(f).unwrap_or_default();
    html! {
        form.box method="post" action=(action) {
            (csrf(&ctx.session))
            label { (tr.t("bo-group-name")) br; input name="name" required maxlength="100" value=(value(|g| g.name.clone())); }
            label { (tr.t("bo-group-rank")) br; input name="rank" inputmode="numeric" value=(value(|g| g.rank.to_string())); span.muted { " " (tr.t("bo-group-rank-hint")) } }
            label { (tr.t("bo-group-threshold")) br; input name="threshold" inputmode="decimal" value=(value(|g| crate::money::amount_input_text(g.spend_threshold))); }
            label { (tr.t("bo-group-discount")) br; input name="discount" inputmode="decimal" value=(value(|g| percent_text(g.discount_bp))); }
            label { (tr.t("bo-group-accrual")) br; input name="accrual" inputmode="decimal" value=(value(|g| percent_text(g.accrual_bp))); }
            label { input type="checkbox" name="never_downgrade" value="1" checked[g.is_some_and(|g| g.never_downgrade)]; " " (tr.t("bo-group-never-downgrade")) }
            label { (tr.t("bo-group-daily-ops")) br; input name="daily_ops" inputmode="numeric" value=(value(|g| g.daily_ops_limit.to_string())); }
            label { (tr.t("bo-group-daily-spend")) br; input name="daily_spend" inputmode="decimal" value=(value(|g| crate::money::amount_input_text(g.daily_spend_limit))); }
            button type="submit" { (tr.t("bo-save")) }
        }
    }
}

fn group_from_form(ctx: &Ctx, form: &HashMap<String, String>) -> Result<NewGroup, Refusal> {
    let name = field(form, "name");
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad_input(ctx, "bo-err-name"));
    }
    let money_or_zero = |key: &str| {
        let text = field(form, key);
        if text.is_empty() {
            Ok(Kopecks::ZERO)
        } else {
            parse_amount(text)
        }
    };
    Ok(NewGroup {
        name: name.to_string(),
        rank: number(field(form, "rank")).ok_or_else(|| bad_input(ctx, "bo-err-number"))?,
        discount_bp: percent(field(form, "discount"))
            .filter(|bp| *bp <= 10_000)
            .ok_or_else(|| bad_input(ctx, "bo-err-percent"))?,
        accrual_bp: percent(field(form, "accrual"))
            .filter(|bp| *bp <= 10_000)
            .ok_or_else(|| bad_input(ctx, "bo-err-percent"))?,
        spend_threshold: money_or_zero("threshold").map_err(|_| bad_input(ctx, "bo-err-amount"))?,
        never_downgrade: field(form, "never_downgrade") == "1",
        daily_ops_limit: number(field(form, "daily_ops")).ok_or_else(|| bad_input(ctx, "bo-err-number"))?,
        daily_spend_limit: money_or_zero("daily_spend").map_err(|_| bad_input(ctx, "bo-err-amount"))?,
    })
}

async fn groups(State(bo): St, headers: HeaderMap) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let tr = ctx.tr;
    let groups = db::groups(&bo.store).await.map_err(|e| refused(&ctx, &e))?;
    let body = html! {
        p.muted { (tr.t("bo-groups-hint")) }
        table {
            tr { th { (tr.t("bo-group-name")) } th.num { (tr.t("bo-group-rank")) } th.num { (tr.t("bo-group-threshold")) } th.num { (tr.t("bo-group-discount")) } th.num { (tr.t("bo-group-accrual")) } th { (tr.t("bo-group-never-downgrade")) } }
            @for g in &groups {
                tr {
                    td { a href={ "/admin/groups/" (g.id) } { (g.rules.name) } }
                    td.num { (g.rules.rank) }
                    td.num { (money(g.rules.spend_threshold.0)) }
                    td.num { (percent_text(g.rules.discount_bp)) " %" }
                    td.num { (percent_text(g.rules.accrual_bp)) " %" }
                    td { @if g.rules.never_downgrade { "✓" } }
                }
            }
        }
        h2 { (tr.t("bo-new-group")) }
        (group_form(&ctx, "/admin/groups", None))
    };
    page(&ctx, &tr.t("bo-nav-groups"), body)
}

async fn create_group(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, true)?;
    let group = group_from_form(&ctx, &form)?;
    let detail = super::in_both_languages(|tr| group_detail(tr, &group));
    let logged = logged(&bo, &ctx, "group_add", None, detail, "", None);
    bo.store
        .run_audited(&ctx.caller(), Op::AddGroup(group), (bo.clock)(), logged)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(user = ctx.session.user_id, "back office: group created");
    Ok(Redirect::to("/admin/groups").into_response())
}

async fn group(State(bo): St, headers: HeaderMap, Path(id): Path<i64>) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let groups = db::groups(&bo.store).await.map_err(|e| refused(&ctx, &e))?;
    let Some(g) = groups.into_iter().find(|g| g.id == id) else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    let body = group_form(&ctx, &format!("/admin/groups/{id}"), Some(&g.rules));
    page(&ctx, &g.rules.name, body)
}

async fn edit_group(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, true)?;
    let group = group_from_form(&ctx, &form)?;
    let detail = super::in_both_languages(|tr| group_detail(tr, &group));
    let logged = logged(&bo, &ctx, "group_edit", None, detail, "", None);
    bo.store
        .run_audited(&ctx.caller(), Op::EditGroup { id, group }, (bo.clock)(), logged)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(user = ctx.session.user_id, group = id, "back office: group changed");
    Ok(Redirect::to("/admin/groups").into_response())
}

// ----- Programme -----

async fn programme(State(bo): St, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let tr = ctx.tr;
    let p = current_programme(&bo, &ctx).await?;
    let body = html! {
        @if field(&query, "done") == "1" { p.ok role="status" { (tr.t("bo-saved")) } }
        form.box method="post" action="/admin/programme" {
            (csrf(&ctx.session))
            label { (tr.t("bo-prog-name")) br; input name="name" required maxlength="100" value=(p.name); }
            label { (tr.t("bo-prog-max-check")) br; input name="max_check" inputmode="decimal" value=(percent_text(p.max_check_bp)); }
            label { (tr.t("bo-prog-spend-step")) br; input name="spend_step" inputmode="decimal" value=(crate::money::amount_input_text(p.spend_step)); }
            label { (tr.t("bo-prog-hold-minutes")) br; input name="hold_minutes" inputmode="numeric" value=(p.hold_ttl_secs / 60); }
            label { (tr.t("bo-prog-group-days")) br; input name="group_days" inputmode="numeric" value=(p.group_period_days); }
            label { (tr.t("bo-prog-utc-offset")) br; input name="utc_offset" inputmode="numeric" value=(p.utc_offset_minutes); }
            label { (tr.t("bo-prog-welcome-bonus")) br; input name="welcome_bonus" inputmode="decimal" value=(crate::money::amount_input_text(p.welcome_bonus)); }
            label { input type="checkbox" name="till_enrolment" value="1" checked[p.till_enrolment]; " " (tr.t("bo-prog-till-enrolment")) }
            button type="submit" { (tr.t("bo-save")) }
        }
        p.muted { (tr.t("bo-prog-not-built")) }
    };
    page(&ctx, &tr.t("bo-nav-programme"), body)
}

/// The organisation's programme (the template while it has none).
pub(super) async fn current_programme(bo: &BackOffice, ctx: &Ctx) -> Result<ProgramSettings, Refusal> {
    bo.store
        .run(&ctx.caller(), Op::Program, (bo.clock)())
        .await
        .and_then(|answer| answer.into_program())
        .map_err(|e| refused(ctx, &e))
}

async fn save_programme(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, true)?;
    // What the form does not show is kept as it is.
    let current = current_programme(&bo, &ctx).await?;
    let name = field(&form, "name");
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad_input(&ctx, "bo-err-name"));
    }
    let whole = |key: &str| field(&form, key).parse::<i64>().ok();
    // An empty field is no welcome bonus; anything else is an amount within the rules' bound.
    let welcome_bonus = match field(&form, "welcome_bonus") {
        "" => Kopecks::ZERO,
        text => parse_amount(text)
            .ok()
            .filter(|b| *b <= rules::MAX_WELCOME_BONUS)
            .ok_or_else(|| bad_input(&ctx, "bo-err-welcome-bonus"))?,
    };
    let program = ProgramSettings {
        name: name.to_string(),
        max_check_bp: percent(field(&form, "max_check"))
            .filter(|bp| *bp <= 10_000)
            .ok_or_else(|| bad_input(&ctx, "bo-err-percent"))?,
        spend_step: parse_amount(field(&form, "spend_step"))
            .ok()
            .filter(|s| s.0 > 0)
            .ok_or_else(|| bad_input(&ctx, "bo-err-amount"))?,
        hold_ttl_secs: whole("hold_minutes")
            .filter(|m| (1..=24 * 60).contains(m))
            .ok_or_else(|| bad_input(&ctx, "bo-err-hold-minutes"))?
            * 60,
        group_period_days: whole("group_days")
            .filter(|d| (1..=3660).contains(d))
            .ok_or_else(|| bad_input(&ctx, "bo-err-number"))?,
        utc_offset_minutes: whole("utc_offset").ok_or_else(|| bad_input(&ctx, "bo-err-number"))?,
        accrual_basis: current.accrual_basis,
        welcome_bonus,
        till_enrolment: field(&form, "till_enrolment") == "1",
    };
    let detail = super::in_both_languages(|tr| programme_detail(tr, &program));
    let logged = logged(&bo, &ctx, "programme", None, detail, "", None);
    bo.store
        .run_audited(&ctx.caller(), Op::SetProgram(program), (bo.clock)(), logged)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(user = ctx.session.user_id, "back office: programme saved");
    Ok(Redirect::to("/admin/programme?done=1").into_response())
}

// ----- Tills -----

/// The organisation's till tokens: name, created, last seen; a new one (its secret shown once);
/// revoking one (refused by the API on its next request).
async fn tills(State(bo): St, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    till_page(&bo, &ctx, None, field(&query, "revoked")).await
}

async fn till_page(bo: &BackOffice, ctx: &Ctx, created: Option<(&str, &str)>, revoked: &str) -> Page {
    let tr = ctx.tr;
    let tokens = bo.store.tokens(&ctx.session.org).await.map_err(|e| refused(ctx, &e))?;
    let body = html! {
        @if let Some((till, token)) = created {
            div.ok role="status" {
                p { (tr.t_args("bo-till-created", &[("till", crate::i18n::Arg::Text(till.to_string()))])) }
                p { code #token { (token) } }
                p { (tr.t("bo-till-secret-once")) }
            }
        }
        @if !revoked.is_empty() {
            p.ok role="status" { (tr.t_args("bo-till-revoked", &[("till", crate::i18n::Arg::Text(revoked.to_string()))])) }
        }
        p.muted { (tr.t("bo-tills-hint")) }
        @if !tokens.is_empty() { table #tills {
            tr { th { (tr.t("bo-till-name")) } th { (tr.t("bo-till-created-at")) } th { (tr.t("bo-till-last-seen")) } th {} }
            @for token in &tokens {
                tr {
                    td { (token.till) }
                    td { (time(tr, token.created_at)) }
                    td { @match token.last_seen_at { Some(at) => (time(tr, at)), None => (tr.t("bo-till-never")) } }
                    td {
                        form method="post" action={ "/admin/tills/" (token.till) "/revoke" } {
                            (csrf(&ctx.session))
                            button type="submit" { (tr.t("bo-till-revoke")) }
                        }
                    }
                }
            }
        } }
        @if tokens.is_empty() { p.muted { (tr.t("bo-tills-none")) } }
        h2 { (tr.t("bo-new-till")) }
        form.box method="post" action="/admin/tills" {
            (csrf(&ctx.session))
            label { (tr.t("bo-till-name-hint")) br; input name="till" required maxlength="32" pattern="[A-Za-z0-9._-]+"; }
            button type="submit" { (tr.t("bo-create")) }
        }
    };
    page(ctx, &tr.t("bo-nav-tills"), body)
}

async fn create_till(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, true)?;
    let till = field(&form, "till");
    if !crate::server::store::valid_name(till) {
        return Err(bad_input(&ctx, "bo-err-till-name"));
    }
    let tokens = bo.store.tokens(&ctx.session.org).await.map_err(|e| refused(&ctx, &e))?;
    if tokens.iter().any(|t| t.till == till) {
        return Err(message(&ctx, StatusCode::CONFLICT, &ctx.tr.t("bo-err-till-exists")));
    }
    let entry = audit_entry(&bo, &ctx, "till_token_add", None, till.to_string(), "");
    let token = bo
        .store
        .create_token_logged(&ctx.session.org, till, (bo.clock)(), Some(&entry))
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(user = ctx.session.user_id, till, "back office: till token created");
    // The secret is shown on this answer only (the store keeps its hash): no redirect to a page
    // that could show it again.
    let mut page = till_page(&bo, &ctx, Some((till, &token)), "").await?;
    page.headers_mut()
        .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    Ok(page)
}

async fn revoke_till(State(bo): St, headers: HeaderMap, Path(till): Path<String>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, true)?;
    if !crate::server::store::valid_name(&till) {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    }
    let entry = audit_entry(&bo, &ctx, "till_token_revoke", None, till.clone(), "");
    let revoked = bo
        .store
        .revoke_token(&ctx.session.org, &till, &entry)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    if !revoked {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    }
    tracing::info!(user = ctx.session.user_id, till = %till, "back office: till token revoked");
    // A valid till name is letters, digits, '.', '-' and '_': safe in a query as it is.
    Ok(Redirect::to(&format!("/admin/tills?revoked={till}")).into_response())
}

// ----- Audit -----

/// A change the back office makes, with who made it, for the audit log.
pub(super) fn audit_entry(
    bo: &BackOffice,
    ctx: &Ctx,
    action: &str,
    guest: Option<i64>,
    detail: String,
    reason: &str,
) -> db::AuditEntry {
    db::AuditEntry {
        at: (bo.clock)(),
        actor: ctx.session.login.clone(),
        action: action.to_string(),
        guest_id: guest,
        detail,
        reason: reason.to_string(),
    }
}

/// The audit row of an engine change, written in the change's own transaction.
pub(super) fn logged(
    bo: &BackOffice,
    ctx: &Ctx,
    action: &str,
    guest: Option<i64>,
    detail: String,
    reason: &str,
    op_key: Option<&str>,
) -> db::Audit {
    db::Audit::fixed(
        &ctx.session.org,
        audit_entry(bo, ctx, action, guest, detail, reason),
        op_key.map(str::to_string),
    )
}

/// Logs a change after it was made, for the changes that do not yet write their row in their
/// own transaction (a failure to log is reported; the change stands).
pub(super) async fn audit(
    bo: &BackOffice,
    ctx: &Ctx,
    action: &str,
    guest: Option<i64>,
    detail: String,
    reason: &str,
    op_key: Option<&str>,
) {
    let entry = audit_entry(bo, ctx, action, guest, detail, reason);
    db::record_audit(&bo.store, &ctx.session.org, &entry, op_key).await;
}

fn audit_action_key(action: &str) -> &'static str {
    match action {
        "manual_credit" => "bo-audit-manual-credit",
        "manual_debit" => "bo-audit-manual-debit",
        "reset_holds" => "bo-audit-reset-holds",
        "block" => "bo-audit-block",
        "unblock" => "bo-audit-unblock",
        "programme" => "bo-audit-programme",
        "group_add" => "bo-audit-group-add",
        "group_edit" => "bo-audit-group-edit",
        "enrol" => "bo-audit-enrol",
        "identifier_add" => "bo-audit-identifier-add",
        "account_open" => "bo-audit-account-open",
        "account_save" => "bo-audit-account-save",
        "till_token_add" => "bo-audit-till-add",
        "till_token_revoke" => "bo-audit-till-revoke",
        "import" => "bo-audit-import",
        "contact" => "bo-audit-contact",
        "password" => "bo-audit-password",
        "owner_first" => "bo-audit-owner-first",
        action if action.starts_with("rw_") => super::rewards::audit_action_key(action),
        _ => "bo-audit-other",
    }
}

fn audit_table(tr: Tr, entries: &[db::AuditEntry], with_guest: bool) -> Markup {
    // Six columns of free text do not fit a side panel's 420 pixels: the table scrolls, the page
    // does not.
    html! {
        div.scroll { table #audit {
            tr {
                th { (tr.t("bo-when")) } th { (tr.t("bo-audit-who")) } th { (tr.t("bo-audit-what")) }
                @if with_guest { th { (tr.t("bo-audit-guest")) } }
                th { (tr.t("bo-audit-detail")) } th { (tr.t("bo-audit-reason")) }
            }
            @for e in entries {
                tr {
                    td { (time(tr, e.at)) }
                    td { (e.actor) }
                    td { (tr.t(audit_action_key(&e.action))) }
                    @if with_guest { td { @if let Some(guest) = e.guest_id { a href={ "/admin/guests/" (guest) } { "#" (guest) } } } }
                    td { (tr.detail(&e.detail)) }
                    td { (e.reason) }
                }
            }
        } }
    }
}

/// «Журнал изменений»: every manual change of the organisation, newest first, paged.
async fn audit_page(State(bo): St, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let tr = ctx.tr;
    let page_no: i64 = field(&query, "page").parse().unwrap_or(0).max(0);
    let entries = db::audit(&bo.store, &ctx.session.org, PAGE + 1, page_no * PAGE)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    let more = entries.len() as i64 > PAGE;
    let shown = &entries[..entries.len().min(PAGE as usize)];
    let body = html! {
        p.muted { (tr.t("bo-audit-hint")) }
        @if shown.is_empty() { p.muted { (tr.t("bo-audit-none")) } } @else { (audit_table(tr, shown, true)) }
        p.pager {
            @if page_no > 0 { a href={ "/admin/audit?page=" (page_no - 1) } { "← " (tr.t("bo-prev")) } }
            @if more { a href={ "/admin/audit?page=" (page_no + 1) } { (tr.t("bo-next")) " →" } }
        }
    };
    page(&ctx, &tr.t("bo-nav-audit"), body)
}

/// A group's rules in one line, for the audit log (in the language of whoever made the change).
fn group_detail(tr: Tr, g: &NewGroup) -> String {
    use crate::i18n::Arg;
    tr.t_args(
        "bo-audit-group-detail",
        &[
            ("name", Arg::Text(g.name.clone())),
            ("rank", Arg::Number(g.rank)),
            ("discount", Arg::Text(percent_text(g.discount_bp))),
            ("accrual", Arg::Text(percent_text(g.accrual_bp))),
            ("threshold", Arg::Money(g.spend_threshold)),
            (
                "never",
                Arg::Text(tr.t(if g.never_downgrade { "bo-yes" } else { "bo-no" })),
            ),
            ("ops", Arg::Number(g.daily_ops_limit)),
            ("spend", Arg::Money(g.daily_spend_limit)),
        ],
    )
}

/// The programme in one line, for the audit log (in the language of whoever made the change).
fn programme_detail(tr: Tr, p: &ProgramSettings) -> String {
    use crate::i18n::Arg;
    tr.t_args(
        "bo-audit-programme-detail",
        &[
            ("name", Arg::Text(p.name.clone())),
            ("max", Arg::Text(percent_text(p.max_check_bp))),
            ("step", Arg::Money(p.spend_step)),
            ("hold", Arg::Number(p.hold_ttl_secs / 60)),
            ("days", Arg::Number(p.group_period_days)),
            ("offset", Arg::Text(format!("{:+}", p.utc_offset_minutes))),
            ("bonus", Arg::Money(p.welcome_bonus)),
            (
                "enrolment",
                Arg::Text(tr.t(if p.till_enrolment { "bo-yes" } else { "bo-no" })),
            ),
        ],
    )
}
