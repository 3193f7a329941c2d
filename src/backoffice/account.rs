//! Accounts and contact data: the first-run page that creates the first owner, a user's own
//! password change, and the edit of a guest's name and phone.
//!
//! The first-run page exists only while no owner account does, and answers only a peer on the
//! loopback interface (the TCP peer's address, never a header a proxy or a browser could set).
//! Passwords are hashed with argon2id as `owner create` hashes them; there is no default one.

use super::auth::{self, MIN_PASSWORD};
use super::db::{self, Role, Val};
use super::pages::{Page, St, bad_input, csrf, ctx, ctx_post, field, layout, message, page, refused};
use super::{BackOffice, Tr, lang_of};
use crate::domain::LoyaltyError;
use crate::loyalty::engine::Op;
use axum::extract::{Form, Path};
use axum::http::{Extensions, HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::collections::HashMap;
use std::net::SocketAddr;

type Fields = Form<HashMap<String, String>>;

/// The longest login accepted.
const MAX_LOGIN: usize = 64;

/// True when the TCP peer is this machine (127.0.0.0/8, ::1, or 127.x mapped into IPv6). A
/// request whose peer is unknown is not local.
pub fn local_peer(peer: Option<SocketAddr>) -> bool {
    peer.is_some_and(|addr| addr.ip().to_canonical().is_loopback())
}

fn peer_of(extensions: &Extensions) -> Option<SocketAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}

/// Whether any owner account exists (in any organisation).
pub async fn owner_exists(bo: &BackOffice) -> Result<bool, LoyaltyError> {
    let rows = db::query(&bo.store, "SELECT COUNT(*) FROM users WHERE role = 'owner'", vec![]).await?;
    Ok(rows.first().is_some_and(|r| r[0].int() > 0))
}

/// `/admin`: the first-run page while there is no owner, the guests otherwise.
pub async fn admin_root(axum::extract::State(bo): St) -> Response {
    match owner_exists(&bo).await {
        Ok(false) => Redirect::to("/admin/setup").into_response(),
        Ok(true) => Redirect::to("/admin/guests").into_response(),
        Err(error) => {
            tracing::error!(%error, "back office: cannot read the accounts");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A page without a session (first run), in the request's language.
fn bare(tr: Tr, status: StatusCode, title: &str, body: maud::Markup) -> Response {
    (status, layout(tr, None, title, body)).into_response()
}

/// Why the first-run page is not shown, or None when it may be.
async fn setup_refusal(bo: &BackOffice, tr: Tr, extensions: &Extensions) -> Option<Response> {
    match owner_exists(bo).await {
        Ok(true) => return Some(Redirect::to("/admin/login").into_response()),
        Ok(false) => {}
        Err(error) => {
            tracing::error!(%error, "back office: cannot read the accounts");
            let body = html! { p.error role="alert" { (tr.t("bo-err-storage")) } };
            return Some(bare(
                tr,
                StatusCode::INTERNAL_SERVER_ERROR,
                &tr.t("bo-error-title"),
                body,
            ));
        }
    }
    if !local_peer(peer_of(extensions)) {
        tracing::warn!("back office: the first-run page was refused to a peer that is not this machine");
        let body = html! { p.error role="alert" #not-local { (tr.t("bo-setup-local-only")) } };
        return Some(bare(tr, StatusCode::FORBIDDEN, &tr.t("bo-setup-title"), body));
    }
    None
}

fn setup_form(bo: &BackOffice, tr: Tr, error: Option<String>, status: StatusCode) -> Response {
    let token = match auth::random_token() {
        Ok(token) => token,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    // On a chain's server the owner names the organisation (the till tokens' one); the single
    // cafe's till has only its own.
    let server = bo.allowed_hosts.is_none();
    let body = html! {
        @if let Some(error) = &error { p.error role="alert" { (error) } }
        p { (tr.t("bo-setup-hint")) }
        form.box method="post" action="/admin/setup" {
            input type="hidden" name="csrf" value=(token);
            @if server {
                label { (tr.t("bo-setup-org")) br; input name="org" value=(crate::ledger::DEFAULT_ORG) required maxlength="32"; }
            }
            label { (tr.t("bo-login")) br; input name="login" autocomplete="username" required autofocus maxlength=(MAX_LOGIN); }
            label { (tr.t("bo-password")) br; input name="password" type="password" autocomplete="new-password" required minlength=(MIN_PASSWORD); }
            label { (tr.t("bo-password-again")) br; input name="password2" type="password" autocomplete="new-password" required minlength=(MIN_PASSWORD); }
            button type="submit" { (tr.t("bo-setup-create")) }
        }
        p.muted { (tr.t("bo-setup-cli")) }
    };
    let cookie = format!("lt_setup={token}; Path=/admin; HttpOnly; SameSite=Strict");
    (
        status,
        [(header::SET_COOKIE, cookie)],
        layout(tr, None, &tr.t("bo-setup-title"), body),
    )
        .into_response()
}

/// `GET /admin/setup`: the first-run form.
pub async fn setup_page(axum::extract::State(bo): St, headers: HeaderMap, extensions: Extensions) -> Response {
    let tr = Tr(lang_of(&headers));
    if let Some(refusal) = setup_refusal(&bo, tr, &extensions).await {
        return refusal;
    }
    setup_form(&bo, tr, None, StatusCode::OK)
}

/// Checks a new password and its repetition; the locale key of the reason when refused.
fn new_password_problem(password: &str, again: &str) -> Option<&'static str> {
    if password.chars().count() < MIN_PASSWORD {
        Some("bo-err-password-short")
    } else if password != again {
        Some("bo-err-password-mismatch")
    } else {
        None
    }
}

fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.chars().count() <= MAX_LOGIN
        && !login.chars().any(|c| c.is_whitespace() || c.is_control())
}

async fn hash(password: String) -> Result<String, LoyaltyError> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| LoyaltyError::Storage(format!("the hashing task failed: {e}")))?
}

/// `POST /admin/setup`: creates the first owner and signs them in. Refused once an owner
/// exists (the insert itself checks, so a second form posted meanwhile makes none).
pub async fn setup(
    axum::extract::State(bo): St,
    headers: HeaderMap,
    extensions: Extensions,
    Form(form): Fields,
) -> Response {
    let tr = Tr(lang_of(&headers));
    if let Some(refusal) = setup_refusal(&bo, tr, &extensions).await {
        return refusal;
    }
    let expected = auth::cookie(&headers, "lt_setup").unwrap_or_default();
    if expected.is_empty() || !auth::same_secret(field(&form, "csrf"), &expected) {
        tracing::warn!("back office: a first-run form without its CSRF token refused");
        return setup_form(&bo, tr, Some(tr.t("bo-err-csrf")), StatusCode::FORBIDDEN);
    }
    let org = if bo.allowed_hosts.is_none() {
        field(&form, "org").to_string()
    } else {
        crate::ledger::DEFAULT_ORG.to_string()
    };
    if !crate::server::store::valid_name(&org) {
        return setup_form(&bo, tr, Some(tr.t("bo-err-org")), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let login = field(&form, "login").to_string();
    if !valid_login(&login) {
        return setup_form(
            &bo,
            tr,
            Some(tr.t("bo-err-login-name")),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let password = form.get("password").cloned().unwrap_or_default();
    let again = form.get("password2").cloned().unwrap_or_default();
    if let Some(problem) = new_password_problem(&password, &again) {
        tracing::info!(reason = problem, "back office: first owner refused");
        return setup_form(&bo, tr, Some(tr.t(problem)), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let entry = db::AuditEntry {
        at: (bo.clock)(),
        actor: login.clone(),
        action: "owner_first".to_string(),
        guest_id: None,
        detail: login.clone(),
        reason: String::new(),
    };
    let created = async {
        let hashed = hash(password).await?;
        // The account and its audit row in one transaction.
        bo.store
            .write_all(
                vec![
                    (
                        "INSERT INTO users (org, login, password_hash, role, created_at)
                         SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), 'owner', CAST($4 AS BIGINT)
                         WHERE NOT EXISTS (SELECT 1 FROM users WHERE role = 'owner')
                         RETURNING id",
                        vec![
                            Val::from(org.as_str()),
                            Val::from(login.as_str()),
                            Val::from(hashed),
                            Val::Int((bo.clock)()),
                        ],
                    ),
                    (db::AUDIT_INSERT, db::audit_params(&org, &entry, None)),
                ],
                true,
            )
            .await
    }
    .await;
    let id = match created {
        Ok(Some(rows)) => match rows.first().and_then(|rows| rows.first()) {
            Some(row) => row[0].int(),
            None => return Redirect::to("/admin/login").into_response(),
        },
        // Another first-run form won the race.
        Ok(None) => return Redirect::to("/admin/login").into_response(),
        Err(error) => {
            // The login is taken (by a manager made with `owner create --role manager`).
            tracing::info!(%error, "back office: first owner not created");
            return setup_form(&bo, tr, Some(tr.t("bo-err-login-taken")), StatusCode::CONFLICT);
        }
    };
    tracing::info!(
        user = id,
        "back office: the first owner was created on the first-run page"
    );
    let Ok((token, _)) = bo.sessions.open(id, &login, &org, Role::Owner) else {
        return Redirect::to("/admin/login").into_response();
    };
    let cookie = format!("lt_session={token}; Path=/admin; HttpOnly; SameSite=Strict");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/admin/guests")).into_response()
}

// ----- The user's own password -----

/// `GET /admin/account`: the password change form.
pub async fn account_page(
    axum::extract::State(bo): St,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    let tr = ctx.tr;
    let body = html! {
        @if field(&query, "done") == "1" { p.ok role="status" #changed { (tr.t("bo-password-changed")) } }
        form.box method="post" action="/admin/account" {
            h2 { (tr.t("bo-password-change")) }
            (csrf(&ctx.session))
            label { (tr.t("bo-password-old")) br; input name="old" type="password" autocomplete="current-password" required; }
            label { (tr.t("bo-password-new")) br; input name="password" type="password" autocomplete="new-password" required minlength=(MIN_PASSWORD); }
            label { (tr.t("bo-password-again")) br; input name="password2" type="password" autocomplete="new-password" required minlength=(MIN_PASSWORD); }
            button type="submit" { (tr.t("bo-save")) }
        }
    };
    page(&ctx, &tr.t("bo-nav-account"), body)
}

/// `POST /admin/account`: a new password for the signed-in user, given the current one. Wrong
/// current passwords count towards the login's lock like failed sign-ins.
pub async fn change_password(axum::extract::State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let login = ctx.session.login.clone();
    if bo.sessions.locked(&login) {
        tracing::warn!(
            user = ctx.session.user_id,
            "back office: password change while the login is locked"
        );
        return Err(message(&ctx, StatusCode::TOO_MANY_REQUESTS, &ctx.tr.t("bo-err-locked")));
    }
    let Some(user) = db::find_user(&bo.store, &login).await.map_err(|e| refused(&ctx, &e))? else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    let old = form.get("old").cloned().unwrap_or_default();
    let stored = user.password_hash.clone();
    let good = tokio::task::spawn_blocking(move || auth::verify_password(&old, &stored))
        .await
        .unwrap_or(false);
    if !good {
        bo.sessions.failed(&login);
        tracing::info!(
            user = ctx.session.user_id,
            "back office: password change with a wrong current password"
        );
        return Err(message(
            &ctx,
            StatusCode::UNAUTHORIZED,
            &ctx.tr.t("bo-err-password-old"),
        ));
    }
    let password = form.get("password").cloned().unwrap_or_default();
    let again = form.get("password2").cloned().unwrap_or_default();
    if let Some(problem) = new_password_problem(&password, &again) {
        return Err(bad_input(&ctx, problem));
    }
    bo.sessions.succeeded(&login);
    let hashed = hash(password).await.map_err(|e| refused(&ctx, &e))?;
    let entry = super::pages::audit_entry(&bo, &ctx, "password", None, String::new(), "");
    bo.store
        .write_all(
            vec![
                (
                    "UPDATE users SET password_hash = $1 WHERE id = $2",
                    vec![Val::from(hashed), Val::Int(user.id)],
                ),
                (db::AUDIT_INSERT, db::audit_params(&ctx.session.org, &entry, None)),
            ],
            false,
        )
        .await
        .map_err(|e| refused(&ctx, &e))?;
    let closed = bo.sessions.close_others(ctx.session.user_id, &headers);
    tracing::info!(
        user = ctx.session.user_id,
        other_sessions_closed = closed,
        "back office: password changed"
    );
    Ok(Redirect::to("/admin/account?done=1").into_response())
}

// ----- A guest's contact data -----

/// `POST /admin/guests/{id}/contact`: a new name and phone. The phone must be no other guest's of
/// the organisation (refused with the reason, nothing changed); the change is audited with the
/// old and new values, phones masked.
pub async fn edit_contact(
    axum::extract::State(bo): St,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Fields,
) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let now = (bo.clock)();
    let Some(before) = db::guest_page(&bo.store, &ctx.session.org, id, now)
        .await
        .map_err(|e| refused(&ctx, &e))?
    else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    let name = field(&form, "name").to_string();
    let phone = Some(field(&form, "phone").to_string()).filter(|p| !p.is_empty());
    let masked = |p: &Option<String>| {
        p.as_deref()
            .map(crate::mask::mask_phone)
            .unwrap_or_else(|| "—".to_string())
    };
    let new_phone = phone.as_deref().and_then(crate::loyalty::rules::normalize_phone);
    let detail = super::in_both_languages(|tr| {
        tr.t_args(
            "bo-audit-contact-detail",
            &[
                ("old_name", crate::i18n::Arg::Text(before.guest.name.clone())),
                ("name", crate::i18n::Arg::Text(name.trim().to_string())),
                ("old_phone", crate::i18n::Arg::Text(masked(&before.guest.phone))),
                ("phone", crate::i18n::Arg::Text(masked(&new_phone))),
            ],
        )
    });
    let logged = super::pages::logged(&bo, &ctx, "contact", Some(id), detail, "", None);
    let op = Op::EditContact { guest: id, name, phone };
    bo.store
        .run_audited(&ctx.caller(), op, now, logged)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(
        guest = id,
        user = ctx.session.user_id,
        "back office: contact data changed"
    );
    Ok(Redirect::to(&format!("/admin/guests/{id}?done=contact")).into_response())
}

/// The contact form on the guest's page.
pub fn contact_form(ctx: &super::pages::Ctx, id: i64, name: &str, phone: Option<&str>) -> maud::Markup {
    let tr = ctx.tr;
    html! {
        form.box #contact method="post" action={ "/admin/guests/" (id) "/contact" } {
            h2 { (tr.t("bo-contact")) }
            (csrf(&ctx.session))
            label { (tr.t("bo-name")) br; input name="name" maxlength="200" value=(name); }
            label { (tr.t("bo-phone")) br; input name="phone" type="tel" value=(phone.unwrap_or_default()) placeholder="+7 900 000-00-00"; }
            p.muted { (tr.t("bo-contact-hint")) }
            button type="submit" { (tr.t("bo-save")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_peers_are_local() {
        let at = |text: &str| {
            Some(
                text.parse::<SocketAddr>()
                    .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
            )
        };
        assert!(local_peer(at("127.0.0.1:5000")));
        assert!(local_peer(at("127.8.9.10:5000")));
        assert!(local_peer(at("[::1]:5000")));
        assert!(
            local_peer(at("[::ffff:127.0.0.1]:5000")),
            "IPv4 loopback mapped into IPv6"
        );
        assert!(!local_peer(at("192.0.2.2:5000")));
        assert!(!local_peer(at("[::ffff:192.0.2.2]:5000")));
        assert!(!local_peer(at("[fd00::2]:5000")));
        assert!(!local_peer(None), "an unknown peer is not local");
    }

    #[test]
    fn new_passwords_are_long_enough_and_typed_twice() {
        assert_eq!(new_password_problem("short", "short"), Some("bo-err-password-short"));
        assert_eq!(
            new_password_problem("long enough", "long enougH"),
            Some("bo-err-password-mismatch")
        );
        assert_eq!(new_password_problem("long enough", "long enough"), None);
        assert!(valid_login("anna"));
        assert!(!valid_login("an na"));
        assert!(!valid_login(""));
    }
}
