//! «Импорт и экспорт гостей»: a CSV file uploaded, read and checked (a preview: how many rows,
//! the first rows as read, every refused row with its line and why), then imported all or
//! nothing by the engine ([`Op::ImportGuests`]); and every guest of the organisation downloaded
//! as CSV, streamed page by page.
//!
//! Both are the owner's: the export holds every phone and card in full (it is the owner's own
//! data, and the page says so), and an import credits opening balances. An uploaded file waits
//! here, in memory, for its confirmation (one per account, for [`STAGED_FOR`]); a restart
//! forgets it and the owner uploads it again.

use super::auth;
use super::db::{self, Val};
use super::pages::{Ctx, Page, Refusal, csrf, ctx, ctx_post, field, message, page, refused};
use super::{BackOffice, Tr};
use crate::i18n::Arg;
use crate::loyalty::engine::Op;
use crate::loyalty::import::{self, ImportOutcome, Reason, Rejection};
use crate::money::Kopecks;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type St = State<Arc<BackOffice>>;

/// The largest file taken: 20 MB (100 000 guests are about 7 MB).
pub const MAX_UPLOAD: usize = 20 * 1024 * 1024;
/// How long an uploaded file waits for its confirmation.
const STAGED_FOR: Duration = Duration::from_secs(30 * 60);
/// Refused rows listed on a page (the count says how many more).
const SHOWN_REJECTIONS: usize = 1_000;
/// Guests read per query of the export.
const EXPORT_PAGE: i64 = 10_000;

/// A file read and waiting for the owner's confirmation.
struct Staged {
    token: String,
    org: String,
    file_name: String,
    /// Empty when anything was rejected: such a file cannot be confirmed.
    rows: Vec<import::ImportRow>,
    /// Every rejected row, for the list to download (the page shows the first ones).
    rejected: Vec<Rejection>,
    at: Instant,
}

/// The files waiting for their confirmation: one per account (a new upload replaces it), so
/// memory stays bounded. Each back office keeps its own: two servers in one process (tests, or a
/// till's back office beside a chain's) have accounts with the same ids.
#[derive(Default)]
pub struct StagedImports(Mutex<HashMap<i64, Staged>>);

impl StagedImports {
    fn stage(&self, user: i64, staged: Staged) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, s| s.at.elapsed() < STAGED_FOR);
        map.insert(user, staged);
    }

    /// The staged file of `user` under `token`, if it is still there.
    fn staged(&self, user: i64, org: &str, token: &str) -> Option<(String, Vec<import::ImportRow>)> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = map.get(&user)?;
        let fresh = s.at.elapsed() < STAGED_FOR;
        (fresh && s.rejected.is_empty() && s.org == org && auth::same_secret(token, &s.token))
            .then(|| (s.file_name.clone(), s.rows.clone()))
    }

    /// The rejected rows of the last file `user` checked, and its name.
    fn rejected(&self, user: i64, org: &str) -> Option<(String, Vec<Rejection>)> {
        let map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let s = map.get(&user)?;
        (s.at.elapsed() < STAGED_FOR && s.org == org).then(|| (s.file_name.clone(), s.rejected.clone()))
    }
}

// ----- The upload form -----

pub async fn import_page(State(bo): St, headers: HeaderMap) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let tr = ctx.tr;
    page(&ctx, &tr.t("bo-imp-title"), upload_form(&ctx))
}

fn upload_form(ctx: &Ctx) -> Markup {
    let tr = ctx.tr;
    html! {
        form.box method="post" action="/admin/guests/import" enctype="multipart/form-data" {
            (csrf(&ctx.session))
            label { (tr.t("bo-imp-file")) br; input #file type="file" name="file" accept=".csv,text/csv" required; }
            button type="submit" { (tr.t("bo-imp-preview")) }
        }
        section.box #format {
            h2 { (tr.t("bo-imp-format")) }
            p { code { (import::HEADER_RU.join(";")) } }
            p { code { (import::HEADER_EN.join(";")) } }
            p { (tr.t("bo-imp-format-columns")) }
            p { (tr.t("bo-imp-format-money")) }
            p { (tr.t("bo-imp-format-encoding")) }
            p { (tr.t("bo-imp-format-all-or-nothing")) }
        }
        section.box #export {
            h2 { (tr.t("bo-exp-title")) }
            p { a href="/admin/guests/export.csv" download { (tr.t("bo-exp-download")) } }
            p.muted { (tr.t("bo-exp-hint")) }
        }
    }
}

// ----- The preview -----

/// The multipart form's fields: text fields as text, the file as bytes with its name.
struct Upload {
    fields: HashMap<String, String>,
    file: Option<(String, Vec<u8>)>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut at = from;
    while at + needle.len() <= haystack.len() {
        let next = haystack[at..].iter().position(|b| *b == first)? + at;
        if haystack.get(next..next + needle.len())? == needle {
            return Some(next);
        }
        at = next + 1;
    }
    None
}

fn header_param(headers: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = headers.find(&key)? + key.len();
    let end = headers[start..].find('"')? + start;
    Some(headers[start..end].to_string())
}

/// `multipart/form-data` as browsers send it (RFC 7578), read from the whole body.
fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Upload> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let mut upload = Upload {
        fields: HashMap::new(),
        file: None,
    };
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    let next_delimiter = format!("\r\n--{boundary}");
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(upload);
        }
        at += 2; // the CRLF after the delimiter
        let head_end = find(body, b"\r\n\r\n", at)?;
        let head = String::from_utf8_lossy(&body[at..head_end]).to_string();
        let content_start = head_end + 4;
        let content_end = find(body, next_delimiter.as_bytes(), content_start)?;
        let content = &body[content_start..content_end];
        let name = header_param(&head, "name")?;
        match header_param(&head, "filename") {
            Some(file_name) if name == "file" => upload.file = Some((file_name, content.to_vec())),
            _ => {
                upload
                    .fields
                    .insert(name, String::from_utf8_lossy(content).into_owned());
            }
        }
        at = content_end + next_delimiter.len();
    }
}

pub async fn upload(State(bo): St, headers: HeaderMap, body: Body) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let tr = ctx.tr;
    let bytes = axum::body::to_bytes(body, MAX_UPLOAD + 64 * 1024).await.map_err(|_| {
        tracing::info!("back office: an import file over the size limit refused");
        message(&ctx, StatusCode::PAYLOAD_TOO_LARGE, &tr.t("bo-imp-err-too-large"))
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let upload = parse_multipart(content_type, &bytes)
        .ok_or_else(|| message(&ctx, StatusCode::BAD_REQUEST, &tr.t("bo-imp-err-no-file")))?;
    let sent = upload.fields.get("csrf").map(String::as_str).unwrap_or_default();
    if !auth::same_secret(sent, &ctx.session.csrf) {
        tracing::warn!(
            user = ctx.session.user_id,
            "back office: an upload without the session's CSRF token refused"
        );
        return Err(message(&ctx, StatusCode::FORBIDDEN, &tr.t("bo-err-csrf")));
    }
    let Some((file_name, content)) = upload.file.filter(|(_, c)| !c.is_empty()) else {
        return Err(message(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            &tr.t("bo-imp-err-no-file"),
        ));
    };
    if content.len() > MAX_UPLOAD {
        return Err(message(
            &ctx,
            StatusCode::PAYLOAD_TOO_LARGE,
            &tr.t("bo-imp-err-too-large"),
        ));
    }
    let read = tokio::task::spawn_blocking(move || import::read_file(&content))
        .await
        .map_err(|_| {
            refused(
                &ctx,
                &crate::domain::LoyaltyError::Storage("the file reader stopped".into()),
            )
        })?;
    // The rows read are checked by the engine as the import will be (groups, the organisation's
    // phones and cards), writing nothing.
    let op = Op::ImportGuests {
        op_key: String::new(),
        actor: ctx.session.login.clone(),
        reason: String::new(),
        rows: read.rows.clone(),
        dry_run: true,
    };
    let checked = bo
        .store
        .run(&ctx.caller(), op, (bo.clock)())
        .await
        .and_then(|a| a.into_import())
        .map_err(|e| refused(&ctx, &e))?;
    let mut rejected = read.rejected.clone();
    rejected.extend(checked.rejected.iter().cloned());
    rejected.sort_by_key(|r| r.line);
    tracing::info!(
        user = ctx.session.user_id,
        rows = read.total,
        rejected = rejected.len(),
        encoding = read.encoding.as_str(),
        "back office: import file previewed"
    );
    let token = auth::random_token().map_err(|e| refused(&ctx, &e))?;
    let op_id = auth::random_token().map_err(|e| refused(&ctx, &e))?;
    let good = rejected.is_empty() && !read.rows.is_empty();
    bo.staged_imports.stage(
        ctx.session.user_id,
        Staged {
            token: token.clone(),
            org: ctx.session.org.clone(),
            file_name: file_name.clone(),
            rows: if good { read.rows.clone() } else { Vec::new() },
            rejected: rejected.clone(),
            at: Instant::now(),
        },
    );
    let body = html! {
        section.box #summary {
            p { (tr.t("bo-imp-file")) ": " strong { (file_name) } }
            p { (tr.t_args("bo-imp-read-as", &[
                ("encoding", Arg::Text(read.encoding.as_str().to_string())),
                ("separator", Arg::Text(read.separator.to_string())),
            ])) }
            @if read.header { p.muted { (tr.t("bo-imp-header-skipped")) } }
            p #rows { (tr.t_args("bo-imp-rows", &[("count", Arg::Number(count(read.total)))])) }
            p #accepted { (tr.t_args("bo-imp-accepted", &[("count", Arg::Number(count(read.rows.len() - checked.rejected.len())))])) }
            p #rejected-count { (tr.t_args("bo-imp-rejected-count", &[("count", Arg::Number(count(rejected.len())))])) }
            @if good { p { (tr.t_args("bo-imp-credited", &[("amount", Arg::Money(checked.credited))])) } }
        }
        @if !read.first_rows.is_empty() {
            h2 { (tr.t("bo-imp-first-rows")) }
            // In a box that scrolls sideways: seven columns do not fit a narrow window.
            section.box {
                table #first-rows {
                    tr { th.num { (tr.t("bo-imp-line")) } @for name in import::HEADER_RU { th { (name) } } }
                    @for row in &read.first_rows {
                        tr { td.num { (row.line) } @for f in &row.fields { td { (f) } } }
                    }
                }
            }
        }
        @if !rejected.is_empty() {
            (rejection_table(tr, &rejected, true))
            p.error role="alert" { (tr.t("bo-imp-nothing-until-fixed")) }
        }
        @if read.rows.is_empty() && rejected.is_empty() {
            p.error role="alert" { (tr.t("bo-imp-err-empty")) }
        }
        @if good {
            form.box method="post" action="/admin/guests/import/confirm" {
                (csrf(&ctx.session))
                input type="hidden" name="token" value=(token);
                input type="hidden" name="op_id" value=(op_id);
                label { (tr.t("bo-imp-reason")) br; input name="reason" required maxlength="200" size="50" style="max-width:100%" value=(tr.t("bo-imp-reason-default")); }
                button type="submit" { (tr.t_args("bo-imp-confirm", &[("count", Arg::Number(count(read.rows.len())))])) }
            }
        }
        p { a href="/admin/guests/import" { (tr.t("bo-imp-another")) } }
    };
    page(&ctx, &tr.t("bo-imp-preview-title"), body)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The rejected rows; with `downloadable`, a link to all of them as CSV (the preview's file).
fn rejection_table(tr: Tr, rejected: &[Rejection], downloadable: bool) -> Markup {
    html! {
        h2 { (tr.t("bo-imp-rejected")) }
        table #rejected {
            tr { th.num { (tr.t("bo-imp-line")) } th { (tr.t("bo-imp-why")) } }
            @for r in rejected.iter().take(SHOWN_REJECTIONS) {
                tr { td.num { (r.line) } td { (reason_text(tr, &r.reason)) } }
            }
        }
        @if rejected.len() > SHOWN_REJECTIONS {
            p.muted { (tr.t_args("bo-imp-more-rejected", &[("count", Arg::Number(count(rejected.len() - SHOWN_REJECTIONS)))])) }
        }
        @if downloadable {
            p { a #rejected-csv href="/admin/guests/import/rejected.csv" download { (tr.t("bo-imp-rejected-download")) } }
        }
    }
}

/// `GET /admin/guests/import/rejected.csv`: every rejected row of the last file checked, with its
/// line and why (in the user's language), for a file with more of them than a page shows.
pub async fn rejected_csv(State(bo): St, headers: HeaderMap) -> Result<Response, Refusal> {
    let ctx = ctx(&bo, &headers, true)?;
    let tr = ctx.tr;
    let Some((file_name, rejected)) = bo.staged_imports.rejected(ctx.session.user_id, &ctx.session.org) else {
        return Err(message(&ctx, StatusCode::NOT_FOUND, &tr.t("bo-imp-err-expired")));
    };
    // A BOM and `;`: what a spreadsheet in a Russian locale opens as columns.
    let mut csv = String::from("\u{feff}");
    csv.push_str(&format!("{};{}\r\n", tr.t("bo-imp-line"), tr.t("bo-imp-why")));
    for r in &rejected {
        csv.push_str(&format!(
            "{};\"{}\"\r\n",
            r.line,
            reason_text(tr, &r.reason).replace('"', "\"\"")
        ));
    }
    tracing::info!(
        user = ctx.session.user_id,
        rejected = rejected.len(),
        "back office: rejected import rows downloaded"
    );
    let name = format!(
        "rejected-{}.csv",
        file_name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-', "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        csv,
    )
        .into_response())
}

/// Why a row was refused, in the page's language.
pub fn reason_text(tr: Tr, reason: &Reason) -> String {
    match reason {
        Reason::ColumnCount { found } => tr.t_args(
            "bo-imp-why-columns",
            &[
                ("found", Arg::Number(count(*found))),
                ("expected", Arg::Number(count(import::REQUIRED_COLUMNS))),
            ],
        ),
        Reason::UnclosedQuote => tr.t("bo-imp-why-quote"),
        Reason::BadName => tr.t("bo-imp-why-name"),
        Reason::NoIdentifier => tr.t("bo-imp-why-no-identifier"),
        Reason::BadPhone => tr.t("bo-imp-why-phone"),
        Reason::BadCard => tr.t("bo-imp-why-card"),
        Reason::BadCardKind => tr.t("bo-imp-why-card-kind"),
        Reason::BadBlocked => tr.t("bo-imp-why-blocked"),
        Reason::NegativeBalance => tr.t("bo-imp-why-negative"),
        Reason::BadBalance => tr.t("bo-imp-why-balance"),
        Reason::TooLargeBalance => tr.t("bo-imp-why-too-large"),
        Reason::UnknownGroup => tr.t("bo-imp-why-group"),
        Reason::DuplicateInFile { first_line } => {
            tr.t_args("bo-imp-why-duplicate", &[("line", Arg::Number(count(*first_line)))])
        }
        Reason::TakenInOrg => tr.t("bo-imp-why-taken"),
    }
}

// ----- The import -----

pub async fn confirm(State(bo): St, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, true)?;
    let tr = ctx.tr;
    let reason = field(&form, "reason");
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(message(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &tr.t("bo-err-reason")));
    }
    let op_id = field(&form, "op_id");
    if op_id.len() < 16 || op_id.len() > 80 || !op_id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(message(&ctx, StatusCode::UNPROCESSABLE_ENTITY, &tr.t("bo-err-op-id")));
    }
    let Some((file_name, rows)) =
        bo.staged_imports
            .staged(ctx.session.user_id, &ctx.session.org, field(&form, "token"))
    else {
        return Err(message(&ctx, StatusCode::GONE, &tr.t("bo-imp-err-expired")));
    };
    let caller = ctx.caller();
    let started = Instant::now();
    let op = Op::ImportGuests {
        op_key: caller.op(op_id),
        actor: ctx.session.login.clone(),
        reason: reason.to_string(),
        rows,
        dry_run: false,
    };
    let outcome: ImportOutcome = bo
        .store
        .run(&caller, op, (bo.clock)())
        .await
        .and_then(|a| a.into_import())
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(
        user = ctx.session.user_id,
        imported = outcome.imported,
        rejected = outcome.rejected.len(),
        millis = started.elapsed().as_millis() as u64,
        "back office: guests imported"
    );
    let body = html! {
        p { (tr.t("bo-imp-file")) ": " strong { (file_name) } }
        @if outcome.rejected.is_empty() {
            p.ok role="status" #imported {
                (tr.t_args("bo-imp-done", &[
                    ("count", Arg::Number(count(outcome.imported))),
                    ("amount", Arg::Money(outcome.credited)),
                ]))
            }
            p { a href="/admin/guests" { (tr.t("bo-nav-guests")) } " · " a href="/admin/audit" { (tr.t("bo-nav-audit")) } }
        } @else {
            // Something changed since the preview (a guest added meanwhile): still nothing imported.
            p.error role="alert" #not-imported { (tr.t("bo-imp-nothing-imported")) }
            (rejection_table(tr, &outcome.rejected, false))
            p { a href="/admin/guests/import" { (tr.t("bo-imp-another")) } }
        }
    };
    page(&ctx, &tr.t("bo-imp-result-title"), body)
}

// ----- The export -----

/// The organisation's guests as CSV: UTF-8 with a BOM (so Excel reads it), `;` between fields,
/// the import's columns and Russian header. Phones and cards in full: it is the owner's data.
/// Written as it is read, [`EXPORT_PAGE`] guests at a time, never as one string.
pub async fn export(
    State(bo): St,
    headers: HeaderMap,
    Query(_): Query<HashMap<String, String>>,
) -> Result<Response, Refusal> {
    let ctx = ctx(&bo, &headers, true)?;
    let org = ctx.session.org.clone();
    let user = ctx.session.user_id;
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes, std::io::Error>::new(4);
    let store = Arc::clone(&bo.store);
    tokio::spawn(async move {
        let mut head = "\u{FEFF}".to_string();
        head.push_str(&import::HEADER_RU.join(";"));
        head.push_str("\r\n");
        if sender.send_data(Bytes::from(head)).await.is_err() {
            return;
        }
        let mut after = 0;
        let mut guests = 0usize;
        loop {
            match export_page(&store, &org, after).await {
                Ok((text, last, n)) => {
                    if n == 0 {
                        break;
                    }
                    guests += n;
                    after = last;
                    if sender.send_data(Bytes::from(text)).await.is_err() {
                        tracing::info!(user, "back office: the export download was stopped by the browser");
                        return;
                    }
                }
                Err(error) => {
                    // The download fails rather than ending early: a file cut short must not
                    // look complete.
                    tracing::error!(%error, user, "back office: the export failed");
                    sender.abort(std::io::Error::other("the export failed"));
                    return;
                }
            }
        }
        tracing::info!(user, guests, "back office: guests exported");
    });
    let name = format!(
        "attachment; filename=\"guests-{}.csv\"",
        chrono::DateTime::from_timestamp((bo.clock)(), 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        Body::new(body),
    )
        .into_response())
}

/// The CSV of the organisation's guests with ids after `after` (at most [`EXPORT_PAGE`]), the
/// last id and how many.
async fn export_page(
    store: &crate::server::store::Store,
    org: &str,
    after: i64,
) -> Result<(String, i64, usize), crate::domain::LoyaltyError> {
    let guests = db::query(
        store,
        "SELECT g.id, g.name, g.phone, gg.name, g.balance, CASE WHEN g.blocked THEN 1 ELSE 0 END FROM guests g JOIN guest_groups gg ON gg.id = g.group_id
         WHERE g.org = $1 AND g.id > $2 ORDER BY g.id LIMIT $3",
        vec![Val::from(org), Val::Int(after), Val::Int(EXPORT_PAGE)],
    )
    .await?;
    let (Some(first), Some(last)) = (guests.first(), guests.last()) else {
        return Ok((String::new(), after, 0));
    };
    let (lo, hi) = (first[0].int(), last[0].int());
    let cards = db::query(
        store,
        "SELECT guest_id, kind, value FROM identifiers
         WHERE org = $1 AND kind <> 'phone' AND guest_id >= $2 AND guest_id <= $3 ORDER BY guest_id, kind, value",
        vec![Val::from(org), Val::Int(lo), Val::Int(hi)],
    )
    .await?;
    let mut by_guest: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for c in cards {
        by_guest.entry(c[0].int()).or_default().push((c[1].text(), c[2].text()));
    }
    let mut text = String::with_capacity(guests.len() * 80);
    let sep = ';';
    for g in &guests {
        let cards = by_guest.remove(&g[0].int()).unwrap_or_default();
        let codes: Vec<&str> = cards.iter().map(|(_, v)| v.as_str()).collect();
        let kinds: Vec<&str> = cards.iter().map(|(k, _)| k.as_str()).collect();
        let sep_str = import::CARD_SEPARATOR.to_string();
        let fields = [
            import::csv_field(&g[1].text(), sep),
            import::csv_field(&g[2].text(), sep),
            import::csv_field(&codes.join(&sep_str), sep),
            import::csv_field(&kinds.join(&sep_str), sep),
            import::csv_field(&g[3].text(), sep),
            import::balance_text(Kopecks(g[4].int())),
            if g[5].int() != 0 { import::BLOCKED_MARK } else { "" }.to_string(),
        ];
        text.push_str(&fields.join(";"));
        text.push_str("\r\n");
    }
    Ok((text, hi, guests.len()))
}
