//! «Бонусы и подарки»: stamp cards, promotions and the gift catalogue (the owner defines them),
//! gift codes issued to a guest (the owner and the manager), and the printable page of a guest's
//! or a gift's signed QR token.
//!
//! Every definition goes through the engine ([`Op::SaveStampCard`] and its siblings), which
//! checks it with `loyalty::rewards` and writes it where the till reads it: the guest card shows
//! the organisation's stamp cards and the promotions that run now, and a gift code scanned at the
//! till gives its gift. The QR page signs the token format the till verifies (`scan::payload`)
//! with the till's key (`[scan] token_secret`), so what is printed here is what the till reads.

use super::pages::{
    Ctx, Fields, Page, Refusal, St, audit, bad_input, csrf, ctx, ctx_post, current_programme, display_name, field,
    logged, message, money, page, refused,
};
use super::{BackOffice, Tr, db};
use crate::domain::{IdentifierKind, LoyaltyError, MAX_CODE_LEN, RewardProblem};
use crate::i18n::Arg;
use crate::loyalty::engine::Op;
use crate::loyalty::rewards::{ALL_WEEKDAYS, GiftDef, MINUTES_PER_DAY, PromotionDef, StampCardDef};
use crate::mask::{mask_code, mask_phone};
use crate::money::{Kopecks, amount_input_text, parse_amount};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use maud::{Markup, PreEscaped, html};
use std::collections::HashMap;
use std::sync::Arc;

pub fn routes() -> Router<Arc<BackOffice>> {
    Router::new()
        .route("/admin/rewards", get(rewards_page))
        .route("/admin/rewards/stamp-cards", post(new_stamp_card))
        .route(
            "/admin/rewards/stamp-cards/{id}",
            get(stamp_card_page).post(edit_stamp_card),
        )
        .route("/admin/rewards/promotions", post(new_promotion))
        .route(
            "/admin/rewards/promotions/{id}",
            get(promotion_page).post(edit_promotion),
        )
        .route("/admin/rewards/gifts", post(new_gift))
        .route("/admin/rewards/gifts/{id}", get(gift_page).post(edit_gift))
        .route("/admin/guests/{id}/rewards", get(guest_rewards))
        .route("/admin/guests/{id}/gift-codes", post(issue_gift))
        .route("/admin/guests/{id}/qr", get(guest_qr))
        .route("/admin/guests/{id}/qr-code", post(add_qr_code))
        .route("/admin/gift-codes/{id}/qr", get(gift_qr))
}

/// The message of each refusal of a definition.
pub fn problem_key(problem: RewardProblem) -> &'static str {
    match problem {
        RewardProblem::Name => "bo-rw-err-name",
        RewardProblem::StampsNeeded => "bo-rw-err-needed",
        RewardProblem::Reward => "bo-rw-err-reward",
        RewardProblem::Cost => "bo-rw-err-cost",
        RewardProblem::EndBeforeStart => "bo-rw-err-end-before-start",
        RewardProblem::NoWeekday => "bo-rw-err-weekdays",
        RewardProblem::Hours => "bo-rw-err-hours",
        RewardProblem::PosCode => "bo-rw-err-pos-code",
        RewardProblem::PosCodeTaken => "bo-rw-err-pos-code-taken",
        RewardProblem::GiftOff => "bo-rw-err-gift-off",
        RewardProblem::CodeTaken => "bo-rw-err-code-taken",
    }
}

/// The audit log's name of each change made here (actions start with `rw_`).
pub fn audit_action_key(action: &str) -> &'static str {
    match action {
        "rw_stamp_card_add" => "bo-audit-rw-stamp-card-add",
        "rw_stamp_card_edit" => "bo-audit-rw-stamp-card-edit",
        "rw_promotion_add" => "bo-audit-rw-promotion-add",
        "rw_promotion_edit" => "bo-audit-rw-promotion-edit",
        "rw_gift_add" => "bo-audit-rw-gift-add",
        "rw_gift_edit" => "bo-audit-rw-gift-edit",
        "rw_gift_issue" => "bo-audit-rw-gift-issue",
        "rw_qr_code_add" => "bo-audit-rw-qr-code-add",
        "rw_qr_print" => "bo-audit-rw-qr-print",
        _ => "bo-audit-other",
    }
}

const PRINT_STYLE: &str = "@media print{header,.noprint{display:none}main{padding:0}body{background:#fff}}
.ticket{background:#fff;border:1px dashed #999;padding:1em;max-width:90mm;text-align:center}
.ticket svg{width:60mm;height:60mm}.ticket h2{margin:.3em 0}.ticket p{margin:.3em 0}
.weekdays label{display:inline-block;margin-right:.8em}input.wide{width:100%;max-width:40em;box-sizing:border-box}
.nowrap{white-space:nowrap}";

// ----- Reading what is defined -----

struct StampCardRow {
    id: i64,
    card: StampCardDef,
    /// Made before cards had an organisation: shown to every organisation, not editable here.
    shared: bool,
}

struct PromotionRow {
    id: i64,
    promotion: PromotionDef,
    shared: bool,
}

async fn stamp_cards(bo: &BackOffice, org: &str) -> Result<Vec<StampCardRow>, LoyaltyError> {
    let rows = db::query(
        &bo.store,
        "SELECT id, name, needed, reward, CASE WHEN org IS NULL THEN 1 ELSE 0 END FROM stamp_cards
         WHERE org = $1 OR org IS NULL ORDER BY id",
        vec![org.into()],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| StampCardRow {
            id: r[0].int(),
            card: StampCardDef {
                name: r[1].text(),
                needed: r[2].int(),
                reward: r[3].text(),
            },
            shared: r[4].int() != 0,
        })
        .collect())
}

async fn promotions(bo: &BackOffice, org: &str) -> Result<Vec<PromotionRow>, LoyaltyError> {
    let rows = db::query(
        &bo.store,
        "SELECT id, name, description, starts_at, ends_at, weekdays, day_start_min, day_end_min,
                CASE WHEN org IS NULL THEN 1 ELSE 0 END
         FROM promotions WHERE org = $1 OR org IS NULL ORDER BY id DESC",
        vec![org.into()],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| PromotionRow {
            id: r[0].int(),
            promotion: PromotionDef {
                name: r[1].text(),
                description: r[2].text(),
                starts_at: r[3].int(),
                ends_at: r[4].int(),
                weekdays: r[5].int(),
                day_start_min: r[6].int(),
                day_end_min: r[7].int(),
            },
            shared: r[8].int() != 0,
        })
        .collect())
}

async fn gifts(bo: &BackOffice, org: &str) -> Result<Vec<(i64, GiftDef)>, LoyaltyError> {
    let rows = db::query(
        &bo.store,
        "SELECT id, name, pos_code, points, active FROM gifts WHERE org = $1 ORDER BY id",
        vec![org.into()],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r[0].int(),
                GiftDef {
                    name: r[1].text(),
                    pos_code: r[2].text(),
                    points: Kopecks(r[3].int()),
                    active: r[4].int() != 0,
                },
            )
        })
        .collect())
}

/// A gift code as the guest's page lists it.
struct IssuedCode {
    id: i64,
    code: String,
    name: String,
    points: i64,
    redeemed_at: Option<i64>,
    guest: i64,
}

fn issued_rows(rows: db::Rows) -> Vec<IssuedCode> {
    rows.into_iter()
        .map(|r| IssuedCode {
            id: r[0].int(),
            code: r[1].text(),
            name: r[2].text(),
            points: r[3].int(),
            redeemed_at: match r[4] {
                db::Val::Null => None,
                ref at => Some(at.int()),
            },
            guest: r[5].int(),
        })
        .collect()
}

async fn guest_codes(bo: &BackOffice, org: &str, guest: i64) -> Result<Vec<IssuedCode>, LoyaltyError> {
    Ok(issued_rows(
        db::query(
            &bo.store,
            "SELECT id, code, gift_name, points, redeemed_at, guest_id FROM gift_codes
             WHERE org = $1 AND guest_id = $2 ORDER BY id DESC LIMIT 200",
            vec![org.into(), guest.into()],
        )
        .await?,
    ))
}

async fn issued_code(bo: &BackOffice, org: &str, id: i64) -> Result<Option<IssuedCode>, LoyaltyError> {
    Ok(issued_rows(
        db::query(
            &bo.store,
            "SELECT id, code, gift_name, points, redeemed_at, guest_id FROM gift_codes WHERE org = $1 AND id = $2",
            vec![org.into(), id.into()],
        )
        .await?,
    )
    .into_iter()
    .next())
}

// ----- Forms -----

/// `HH:MM` (or `24:00` for the end of the day) in minutes after midnight.
fn minutes(text: &str) -> Option<i64> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= MINUTES_PER_DAY).then_some(h * 60 + m)
}

fn minutes_text(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A `datetime-local` value (`2025-03-10T12:00`) in the programme's time zone, as Unix seconds.
fn local_time(text: &str, utc_offset_minutes: i64) -> Option<i64> {
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").ok()?;
    Some(naive.and_utc().timestamp() - utc_offset_minutes * 60)
}

fn local_time_text(at: i64, utc_offset_minutes: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp(at + utc_offset_minutes * 60, 0)
        .map(|t| t.format(format).to_string())
        .unwrap_or_default()
}

fn weekdays_text(tr: Tr, weekdays: i64) -> String {
    if weekdays == ALL_WEEKDAYS {
        return tr.t("bo-rw-every-day");
    }
    (0..7)
        .filter(|day| weekdays & (1 << day) != 0)
        .map(|day| tr.t(&format!("bo-rw-wd-{day}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn hours_text(p: &PromotionDef) -> String {
    format!("{}–{}", minutes_text(p.day_start_min), minutes_text(p.day_end_min))
}

/// A form's fields as typed (or as a saved definition reads), so that a refused form comes back
/// with what was typed in it.
type Values = HashMap<String, String>;

fn value<'a>(v: &'a Values, key: &str) -> &'a str {
    v.get(key).map(String::as_str).unwrap_or_default()
}

fn values(pairs: &[(&str, String)]) -> Values {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn card_values(c: &StampCardDef) -> Values {
    values(&[
        ("name", c.name.clone()),
        ("needed", c.needed.to_string()),
        ("reward", c.reward.clone()),
    ])
}

fn promotion_values(p: &PromotionDef, offset: i64) -> Values {
    let when = |at: i64| local_time_text(at, offset, "%Y-%m-%dT%H:%M");
    let mut v = values(&[
        ("name", p.name.clone()),
        ("description", p.description.clone()),
        ("starts", when(p.starts_at)),
        ("ends", when(p.ends_at)),
        ("from", minutes_text(p.day_start_min)),
        ("to", minutes_text(p.day_end_min)),
    ]);
    for day in (0..7).filter(|day| p.weekdays & (1 << day) != 0) {
        v.insert(format!("wd{day}"), "1".to_string());
    }
    v
}

/// A new promotion's form: every day, the whole day.
fn new_promotion_values() -> Values {
    let mut v = values(&[("from", "00:00".to_string()), ("to", "24:00".to_string())]);
    for day in 0..7 {
        v.insert(format!("wd{day}"), "1".to_string());
    }
    v
}

fn gift_values(g: &GiftDef) -> Values {
    let mut v = values(&[
        ("name", g.name.clone()),
        ("pos_code", g.pos_code.clone()),
        ("points", amount_input_text(g.points)),
    ]);
    if g.active {
        v.insert("active".to_string(), "1".to_string());
    }
    v
}

fn stamp_card_form(ctx: &Ctx, action: &str, v: &Values) -> Markup {
    let tr = ctx.tr;
    html! {
        form.box method="post" action=(action) {
            (csrf(&ctx.session))
            label { (tr.t("bo-rw-card-name")) br; input name="name" required maxlength="100" value=(value(v, "name")); }
            label { (tr.t("bo-rw-needed")) br; input name="needed" inputmode="numeric" required value=(value(v, "needed")); }
            label { (tr.t("bo-rw-reward")) br; input name="reward" required maxlength="100" value=(value(v, "reward")); }
            button type="submit" { (tr.t("bo-save")) }
        }
    }
}

fn stamp_card_from_form(form: &Values) -> Result<StampCardDef, &'static str> {
    Ok(StampCardDef {
        name: field(form, "name").to_string(),
        needed: field(form, "needed").parse().map_err(|_| "bo-rw-err-needed")?,
        reward: field(form, "reward").to_string(),
    })
}

fn promotion_form(ctx: &Ctx, action: &str, v: &Values) -> Markup {
    let tr = ctx.tr;
    html! {
        form.box method="post" action=(action) {
            (csrf(&ctx.session))
            label { (tr.t("bo-rw-promotion-name")) br; input name="name" required maxlength="100" value=(value(v, "name")); }
            label { (tr.t("bo-rw-description")) br; input.wide name="description" maxlength="500" value=(value(v, "description")); }
            label { (tr.t("bo-rw-starts")) br; input name="starts" type="datetime-local" required value=(value(v, "starts")); }
            label { (tr.t("bo-rw-ends")) br; input name="ends" type="datetime-local" required value=(value(v, "ends")); }
            fieldset.weekdays {
                legend { (tr.t("bo-rw-weekdays")) }
                @for day in 0..7 {
                    label { input type="checkbox" name={ "wd" (day) } value="1" checked[value(v, &format!("wd{day}")) == "1"]; " " (tr.t(&format!("bo-rw-wd-{day}"))) }
                }
            }
            label { (tr.t("bo-rw-hours-from")) br; input name="from" inputmode="numeric" placeholder="00:00" value=(value(v, "from")); }
            label { (tr.t("bo-rw-hours-to")) br; input name="to" inputmode="numeric" placeholder="24:00" value=(value(v, "to")); }
            p.muted { (tr.t("bo-rw-hours-hint")) }
            button type="submit" { (tr.t("bo-save")) }
        }
    }
}

fn promotion_from_form(form: &Values, offset: i64) -> Result<PromotionDef, &'static str> {
    let date = |key: &str| local_time(field(form, key), offset).ok_or("bo-rw-err-date");
    let hour = |key: &str, empty: i64| match field(form, key) {
        "" => Ok(empty),
        text => minutes(text).ok_or("bo-rw-err-hours"),
    };
    Ok(PromotionDef {
        name: field(form, "name").to_string(),
        description: field(form, "description").to_string(),
        starts_at: date("starts")?,
        ends_at: date("ends")?,
        weekdays: (0..7)
            .filter(|day| field(form, &format!("wd{day}")) == "1")
            .fold(0, |bits, day| bits | (1 << day)),
        day_start_min: hour("from", 0)?,
        // «00:00» as the end is the end of the day: an end before the start means nothing else.
        day_end_min: match hour("to", MINUTES_PER_DAY)? {
            0 => MINUTES_PER_DAY,
            end => end,
        },
    })
}

fn gift_form(ctx: &Ctx, action: &str, v: &Values) -> Markup {
    let tr = ctx.tr;
    html! {
        form.box method="post" action=(action) {
            (csrf(&ctx.session))
            label { (tr.t("bo-rw-gift-name")) br; input name="name" required maxlength="100" value=(value(v, "name")); }
            label { (tr.t("bo-rw-pos-code")) br; input name="pos_code" required maxlength="64" value=(value(v, "pos_code")); }
            label { (tr.t("bo-rw-cost")) br; input name="points" inputmode="decimal" required value=(value(v, "points")); }
            label { input type="checkbox" name="active" value="1" checked[value(v, "active") == "1"]; " " (tr.t("bo-rw-active")) }
            button type="submit" { (tr.t("bo-save")) }
        }
    }
}

fn gift_from_form(form: &Values) -> Result<GiftDef, &'static str> {
    // A minus sign is read as such, so that a negative cost gets the rule's own reason.
    let text = field(form, "points");
    let points = match text.strip_prefix('-') {
        Some(rest) => parse_amount(rest.trim()).map(|k| Kopecks(-k.0)),
        None => parse_amount(text),
    }
    .map_err(|_| "bo-rw-err-cost")?;
    Ok(GiftDef {
        name: field(form, "name").to_string(),
        pos_code: field(form, "pos_code").to_string(),
        points,
        active: field(form, "active") == "1",
    })
}

// ----- Details for the audit log -----

fn card_detail(tr: Tr, c: &StampCardDef) -> String {
    tr.t_args(
        "bo-audit-rw-stamp-card-detail",
        &[
            ("name", Arg::Text(c.name.clone())),
            ("needed", Arg::Number(c.needed)),
            ("reward", Arg::Text(c.reward.clone())),
        ],
    )
}

fn promotion_detail(tr: Tr, p: &PromotionDef, offset: i64) -> String {
    tr.t_args(
        "bo-audit-rw-promotion-detail",
        &[
            ("name", Arg::Text(p.name.clone())),
            (
                "from",
                Arg::Text(local_time_text(p.starts_at, offset, "%Y-%m-%d %H:%M")),
            ),
            ("to", Arg::Text(local_time_text(p.ends_at, offset, "%Y-%m-%d %H:%M"))),
            ("days", Arg::Text(weekdays_text(tr, p.weekdays))),
            ("hours", Arg::Text(hours_text(p))),
        ],
    )
}

fn gift_detail(tr: Tr, g: &GiftDef) -> String {
    tr.t_args(
        "bo-audit-rw-gift-detail",
        &[
            ("name", Arg::Text(g.name.clone())),
            ("pos", Arg::Text(g.pos_code.clone())),
            ("points", Arg::Money(g.points)),
            ("active", Arg::Text(tr.t(if g.active { "bo-yes" } else { "bo-no" }))),
        ],
    )
}

// ----- The definitions page (owner) -----

async fn rewards_page(State(bo): St, headers: HeaderMap, Query(query): Query<HashMap<String, String>>) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let saved = field(&query, "done") == "1";
    definitions(&bo, &ctx, saved, None).await
}

/// What a definition form is about.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Card,
    Promotion,
    Gift,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Card => "/admin/rewards/stamp-cards",
            Kind::Promotion => "/admin/rewards/promotions",
            Kind::Gift => "/admin/rewards/gifts",
        }
    }
}

/// A refused form: which, what was typed in it, and why.
struct Refused<'a> {
    kind: Kind,
    values: &'a Values,
    reason: String,
}

/// The definitions page; a refused new definition comes back in its form with the reason.
async fn definitions(bo: &BackOffice, ctx: &Ctx, saved: bool, refused_form: Option<Refused<'_>>) -> Page {
    let tr = ctx.tr;
    let org = ctx.session.org.clone();
    let offset = current_programme(bo, ctx).await?.utc_offset_minutes;
    let cards = stamp_cards(bo, &org).await.map_err(|e| refused(ctx, &e))?;
    let promos = promotions(bo, &org).await.map_err(|e| refused(ctx, &e))?;
    let catalogue = gifts(bo, &org).await.map_err(|e| refused(ctx, &e))?;
    let now = (bo.clock)();
    let empty = Values::new();
    let new_promotion = new_promotion_values();
    let new_gift = values(&[("active", "1".to_string())]);
    let typed = |kind: Kind| refused_form.as_ref().filter(|r| r.kind == kind).map(|r| r.values);
    let reason = |kind: Kind| {
        refused_form
            .as_ref()
            .filter(|r| r.kind == kind)
            .map(|r| r.reason.clone())
    };
    let body = html! {
        @if saved { p.ok role="status" { (tr.t("bo-saved")) } }
        @if let Some(r) = &refused_form { p.error role="alert" { (r.reason) } }
        p.muted { (tr.t("bo-rw-hint")) }
        section.box #stamp-cards {
            h2 { (tr.t("bo-rw-stamp-cards")) }
            @if cards.is_empty() { p.muted { (tr.t("bo-rw-none")) } } @else {
                table {
                    tr { th { (tr.t("bo-rw-card-name")) } th.num { (tr.t("bo-rw-needed")) } th { (tr.t("bo-rw-reward")) } }
                    @for c in &cards {
                        tr {
                            td { @if c.shared { (c.card.name) " " span.muted { (tr.t("bo-rw-shared")) } } @else { a href={ "/admin/rewards/stamp-cards/" (c.id) } { (c.card.name) } } }
                            td.num { (c.card.needed) }
                            td { (c.card.reward) }
                        }
                    }
                }
            }
            h3 { (tr.t("bo-rw-new-card")) }
            @if let Some(reason) = reason(Kind::Card) { p.error { (reason) } }
            (stamp_card_form(ctx, Kind::Card.path(), typed(Kind::Card).unwrap_or(&empty)))
        }
        section.box #promotions {
            h2 { (tr.t("bo-rw-promotions")) }
            @if promos.is_empty() { p.muted { (tr.t("bo-rw-none")) } } @else {
                table {
                    tr { th { (tr.t("bo-rw-promotion-name")) } th { (tr.t("bo-rw-period")) } th { (tr.t("bo-rw-weekdays")) } th { (tr.t("bo-rw-hours")) } th { (tr.t("bo-rw-now")) } }
                    @for p in &promos {
                        tr {
                            td { @if p.shared { (p.promotion.name) " " span.muted { (tr.t("bo-rw-shared")) } } @else { a href={ "/admin/rewards/promotions/" (p.id) } { (p.promotion.name) } }
                                 @if !p.promotion.description.is_empty() { br; span.muted { (p.promotion.description) } } }
                            td { (local_time_text(p.promotion.starts_at, offset, "%Y-%m-%d %H:%M")) " – " (local_time_text(p.promotion.ends_at, offset, "%Y-%m-%d %H:%M")) }
                            td { (weekdays_text(tr, p.promotion.weekdays)) }
                            td { (hours_text(&p.promotion)) }
                            td { @if crate::loyalty::rewards::promotion_on(&p.promotion, now, offset) { "✓ " (tr.t("bo-rw-running")) } }
                        }
                    }
                }
            }
            h3 { (tr.t("bo-rw-new-promotion")) }
            @if let Some(reason) = reason(Kind::Promotion) { p.error { (reason) } }
            (promotion_form(ctx, Kind::Promotion.path(), typed(Kind::Promotion).unwrap_or(&new_promotion)))
        }
        section.box #gifts {
            h2 { (tr.t("bo-rw-gifts")) }
            @if catalogue.is_empty() { p.muted { (tr.t("bo-rw-none")) } } @else {
                table {
                    tr { th { (tr.t("bo-rw-gift-name")) } th { (tr.t("bo-rw-pos-code")) } th.num { (tr.t("bo-rw-cost")) } th { (tr.t("bo-rw-active")) } }
                    @for (id, g) in &catalogue {
                        tr {
                            td { a href={ "/admin/rewards/gifts/" (id) } { (g.name) } }
                            td { code { (g.pos_code) } }
                            td.num { (money(g.points.0)) }
                            td { @if g.active { "✓" } @else { (tr.t("bo-rw-off")) } }
                        }
                    }
                }
            }
            p.muted { (tr.t("bo-rw-pos-not-read")) }
            h3 { (tr.t("bo-rw-new-gift")) }
            @if let Some(reason) = reason(Kind::Gift) { p.error { (reason) } }
            (gift_form(ctx, Kind::Gift.path(), typed(Kind::Gift).unwrap_or(&new_gift)))
        }
        style { (PRINT_STYLE) }
    };
    page(ctx, &tr.t("bo-nav-rewards"), body)
}

/// A definition's own page: its form, with the reason when it was refused.
fn edit_page(ctx: &Ctx, kind: Kind, id: i64, title: &str, v: &Values, reason: Option<&str>) -> Page {
    let action = format!("{}/{id}", kind.path());
    let body = html! {
        @if let Some(reason) = reason { p.error role="alert" { (reason) } }
        @match kind {
            Kind::Card => (stamp_card_form(ctx, &action, v)),
            Kind::Promotion => (promotion_form(ctx, &action, v)),
            Kind::Gift => (gift_form(ctx, &action, v)),
        }
        p { a href="/admin/rewards" { "← " (ctx.tr.t("bo-nav-rewards")) } }
        style { (PRINT_STYLE) }
    };
    page(ctx, title, body)
}

/// A posted definition (new when `id` is `None`): read, run through the engine, logged. Bad
/// input and the engine's refusals come back in the form as typed, with the reason (422).
async fn submit(bo: &BackOffice, headers: &HeaderMap, kind: Kind, id: Option<i64>, form: &Values) -> Page {
    let ctx = ctx_post(bo, headers, form, true)?;
    let tr = ctx.tr;
    let offset = current_programme(bo, &ctx).await?.utc_offset_minutes;
    let read = match kind {
        Kind::Card => stamp_card_from_form(form).map(|card| {
            let detail = super::in_both_languages(|tr| card_detail(tr, &card));
            (Op::SaveStampCard { id, card }, "rw_stamp_card", detail)
        }),
        Kind::Promotion => promotion_from_form(form, offset).map(|promotion| {
            let detail = super::in_both_languages(|tr| promotion_detail(tr, &promotion, offset));
            (Op::SavePromotion { id, promotion }, "rw_promotion", detail)
        }),
        Kind::Gift => gift_from_form(form).map(|gift| {
            let detail = super::in_both_languages(|tr| gift_detail(tr, &gift));
            (Op::SaveGift { id, gift }, "rw_gift", detail)
        }),
    };
    let reason = match read {
        Err(key) => {
            tracing::info!(field = key, "back office: bad input refused");
            tr.t(key)
        }
        Ok((op, action, detail)) => {
            let action = format!("{action}_{}", if id.is_some() { "edit" } else { "add" });
            let logged = logged(bo, &ctx, &action, None, detail, "", None);
            match bo.store.run_audited(&ctx.caller(), op, (bo.clock)(), logged).await {
                Ok(_) => {
                    tracing::info!(user = ctx.session.user_id, %action, "back office: reward definition saved");
                    return Ok(Redirect::to("/admin/rewards?done=1").into_response());
                }
                Err(error @ LoyaltyError::InvalidReward(_)) => {
                    tracing::info!(%error, "back office: refused");
                    tr.error(&error)
                }
                // Another organisation's definition or none, a store failure: the usual pages.
                Err(error) => return Err(refused(&ctx, &error)),
            }
        }
    };
    let mut answer = match id {
        None => {
            let refused_form = Refused {
                kind,
                values: form,
                reason,
            };
            definitions(bo, &ctx, false, Some(refused_form)).await?
        }
        Some(id) => edit_page(&ctx, kind, id, &tr.t("bo-nav-rewards"), form, Some(&reason))?,
    };
    *answer.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(answer)
}

async fn new_stamp_card(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    submit(&bo, &headers, Kind::Card, None, &form).await
}

async fn edit_stamp_card(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    submit(&bo, &headers, Kind::Card, Some(id), &form).await
}

async fn new_promotion(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    submit(&bo, &headers, Kind::Promotion, None, &form).await
}

async fn edit_promotion(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    submit(&bo, &headers, Kind::Promotion, Some(id), &form).await
}

async fn new_gift(State(bo): St, headers: HeaderMap, Form(form): Fields) -> Page {
    submit(&bo, &headers, Kind::Gift, None, &form).await
}

async fn edit_gift(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    submit(&bo, &headers, Kind::Gift, Some(id), &form).await
}

async fn stamp_card_page(State(bo): St, headers: HeaderMap, Path(id): Path<i64>) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let cards = stamp_cards(&bo, &ctx.session.org)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    let Some(row) = cards.into_iter().find(|c| c.id == id && !c.shared) else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    edit_page(&ctx, Kind::Card, id, &row.card.name, &card_values(&row.card), None)
}

async fn promotion_page(State(bo): St, headers: HeaderMap, Path(id): Path<i64>) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let offset = current_programme(&bo, &ctx).await?.utc_offset_minutes;
    let promos = promotions(&bo, &ctx.session.org).await.map_err(|e| refused(&ctx, &e))?;
    let Some(row) = promos.into_iter().find(|p| p.id == id && !p.shared) else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    let v = promotion_values(&row.promotion, offset);
    edit_page(&ctx, Kind::Promotion, id, &row.promotion.name, &v, None)
}

async fn gift_page(State(bo): St, headers: HeaderMap, Path(id): Path<i64>) -> Page {
    let ctx = ctx(&bo, &headers, true)?;
    let catalogue = gifts(&bo, &ctx.session.org).await.map_err(|e| refused(&ctx, &e))?;
    let Some((_, gift)) = catalogue.into_iter().find(|(gift, _)| *gift == id) else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    edit_page(&ctx, Kind::Gift, id, &gift.name, &gift_values(&gift), None)
}

// ----- A guest's gift codes (owner and manager) -----

/// A fresh gift code: `G` and 10 random digits (the form carries it, so a form posted twice
/// names the same code and issues it once).
fn new_gift_code() -> Result<String, LoyaltyError> {
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).map_err(|e| LoyaltyError::Storage(format!("no random numbers: {e}")))?;
    Ok(std::iter::once('G')
        .chain(bytes.iter().map(|b| char::from(b'0' + b % 10)))
        .collect())
}

async fn guest_rewards(
    State(bo): St,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(query): Query<HashMap<String, String>>,
) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    let tr = ctx.tr;
    let org = ctx.session.org.clone();
    let Some(g) = db::guest_page(&bo.store, &org, id, (bo.clock)())
        .await
        .map_err(|e| refused(&ctx, &e))?
    else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    let codes = guest_codes(&bo, &org, id).await.map_err(|e| refused(&ctx, &e))?;
    let catalogue = gifts(&bo, &org).await.map_err(|e| refused(&ctx, &e))?;
    let active: Vec<&(i64, GiftDef)> = catalogue.iter().filter(|(_, g)| g.active).collect();
    let code = new_gift_code().map_err(|e| refused(&ctx, &e))?;
    let body = html! {
        @if field(&query, "done") == "issued" { p.ok role="status" { (tr.t("bo-rw-issued")) } }
        p { a href={ "/admin/guests/" (id) } { "← " (display_name(tr, &g.guest.name)) } " · "
            a #guest-qr href={ "/admin/guests/" (id) "/qr" } { (tr.t("bo-rw-guest-qr")) } }
        section.box {
            h2 { (tr.t("bo-rw-issue")) }
            @if active.is_empty() { p.muted { (tr.t("bo-rw-no-gifts")) } } @else {
                form method="post" action={ "/admin/guests/" (id) "/gift-codes" } {
                    (csrf(&ctx.session))
                    input type="hidden" name="code" value=(code);
                    label { (tr.t("bo-rw-gift")) br;
                        select name="gift" { @for (gift_id, gift) in &active { option value=(gift_id) { (gift.name) " — " (money(gift.points.0)) } } }
                    }
                    button type="submit" { (tr.t("bo-rw-issue-button")) }
                }
            }
        }
        section.box {
            h2 { (tr.t("bo-rw-codes")) }
            @if codes.is_empty() { p.muted { (tr.t("bo-rw-no-codes")) } } @else {
                table #gift-codes {
                    tr { th { (tr.t("bo-rw-gift")) } th { (tr.t("bo-rw-code")) } th.num { (tr.t("bo-rw-cost")) } th { (tr.t("bo-rw-state")) } th {} }
                    @for c in &codes {
                        tr {
                            td { (c.name) }
                            td { code { (c.code) } }
                            td.num { (money(c.points)) }
                            td { @match c.redeemed_at { Some(at) => { (tr.t("bo-rw-redeemed")) " " (super::pages::time(tr, at)) }, None => (tr.t("bo-rw-not-redeemed")) } }
                            td { @if c.redeemed_at.is_none() { a href={ "/admin/gift-codes/" (c.id) "/qr" } { (tr.t("bo-rw-print-qr")) } } }
                        }
                    }
                }
            }
        }
    };
    page(&ctx, &tr.t("bo-rw-guest-title"), body)
}

async fn issue_gift(State(bo): St, headers: HeaderMap, Path(guest): Path<i64>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let code = field(&form, "code");
    if code.is_empty() || code.len() > 40 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(bad_input(&ctx, "bo-err-op-id"));
    }
    let gift_id: i64 = field(&form, "gift")
        .parse()
        .map_err(|_| bad_input(&ctx, "bo-rw-err-gift"))?;
    let catalogue = gifts(&bo, &ctx.session.org).await.map_err(|e| refused(&ctx, &e))?;
    let name = catalogue
        .iter()
        .find(|(id, _)| *id == gift_id)
        .map(|(_, g)| g.name.clone())
        .unwrap_or_default();
    let caller = ctx.caller();
    let op_key = caller.op(&format!("gift-{code}"));
    let op = Op::IssueGift {
        op_key: op_key.clone(),
        guest,
        gift_id,
        code: code.to_string(),
    };
    let masked = mask_code(code);
    let detail = super::in_both_languages(|tr| {
        tr.t_args(
            "bo-audit-rw-gift-issue-detail",
            &[("gift", Arg::Text(name.clone())), ("code", Arg::Text(masked.clone()))],
        )
    });
    let logged = logged(&bo, &ctx, "rw_gift_issue", Some(guest), detail, "", Some(&op_key));
    bo.store
        .run_audited(&caller, op, (bo.clock)(), logged)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(guest, user = ctx.session.user_id, "back office: gift code issued");
    Ok(Redirect::to(&format!("/admin/guests/{guest}/rewards?done=issued")).into_response())
}

// ----- Printable QR pages -----

/// The code a guest's token carries: the app QR code, else a manual code, else a card barcode
/// (never a magnetic stripe, which may be a bank card, nor the phone, which would be printed in
/// clear). The token format takes printable ASCII without '.'.
fn token_code(identifiers: &[(String, String)]) -> Option<String> {
    [
        IdentifierKind::AppQr,
        IdentifierKind::ManualCode,
        IdentifierKind::CardBarcode,
    ]
    .into_iter()
    .find_map(|kind| {
        identifiers
            .iter()
            .find(|(k, v)| {
                k == kind.as_str() && v.len() <= MAX_CODE_LEN && v.bytes().all(|b| b.is_ascii_graphic() && b != b'.')
            })
            .map(|(_, v)| v.clone())
    })
}

/// The printable page: the token as a QR code, who it is for, until when the till takes it.
fn ticket(ctx: &Ctx, title: &str, lines: Markup, token: &str, valid_until: String, back: &str) -> Page {
    let tr = ctx.tr;
    let Some(svg) = qr_svg(token) else {
        return Err(message(ctx, StatusCode::INTERNAL_SERVER_ERROR, &tr.t("bo-err-storage")));
    };
    let body = html! {
        div.ticket #ticket {
            (PreEscaped(svg))
            (lines)
            p.muted { (tr.t_args("bo-rw-valid-until", &[("time", Arg::Text(valid_until))])) }
        }
        div.noprint {
            p.muted { (tr.t("bo-rw-print-hint")) }
            p { a href=(back) { "← " (tr.t("bo-rw-guest-title")) } }
        }
        style { (PRINT_STYLE) }
    };
    page(ctx, title, body)
}

/// The key, or the page that says none is set.
fn qr_key<'a>(bo: &'a BackOffice, ctx: &Ctx) -> Result<&'a super::QrKey, Refusal> {
    bo.qr.as_ref().ok_or_else(|| {
        tracing::info!("back office: a QR page asked for, but no token key is set");
        message(ctx, StatusCode::CONFLICT, &ctx.tr.t("bo-rw-no-key"))
    })
}

async fn guest_qr(State(bo): St, headers: HeaderMap, Path(id): Path<i64>) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    let tr = ctx.tr;
    let now = (bo.clock)();
    let Some(g) = db::guest_page(&bo.store, &ctx.session.org, id, now)
        .await
        .map_err(|e| refused(&ctx, &e))?
    else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    let key = qr_key(&bo, &ctx)?;
    let Some(code) = token_code(&g.identifiers) else {
        // No code to put in a token: offer to give the guest one.
        let body = html! {
            p.error role="alert" { (tr.t("bo-rw-no-token-code")) }
            form method="post" action={ "/admin/guests/" (id) "/qr-code" } {
                (csrf(&ctx.session))
                button type="submit" { (tr.t("bo-rw-add-qr-code")) }
            }
        };
        return page(&ctx, &display_name(tr, &g.guest.name), body);
    };
    let offset = current_programme(&bo, &ctx).await?.utc_offset_minutes;
    let token = crate::scan::payload::sign_guest_token(&key.secret, &code, now);
    let lines = html! {
        h2 #who { (display_name(tr, &g.guest.name)) }
        p #phone.nowrap { (g.guest.phone.as_deref().map(mask_phone).unwrap_or_default()) }
        p { (tr.t("bo-rw-guest-card")) }
    };
    audit(&bo, &ctx, "rw_qr_print", Some(id), tr.t("bo-rw-guest-qr"), "", None).await;
    let until = local_time_text(now + key.max_age_secs, offset, "%Y-%m-%d %H:%M");
    ticket(
        &ctx,
        &tr.t("bo-rw-guest-qr"),
        lines,
        &token,
        until,
        &format!("/admin/guests/{id}/rewards"),
    )
}

async fn add_qr_code(State(bo): St, headers: HeaderMap, Path(id): Path<i64>, Form(form): Fields) -> Page {
    let ctx = ctx_post(&bo, &headers, &form, false)?;
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| refused(&ctx, &LoyaltyError::Storage(format!("no random numbers: {e}"))))?;
    let value: String = std::iter::once("GMB-".to_string())
        .chain(bytes.iter().map(|b| (b % 10).to_string()))
        .collect();
    let op = Op::AddIdentifier {
        guest: id,
        kind: IdentifierKind::AppQr,
        value: value.clone(),
    };
    let logged = logged(&bo, &ctx, "rw_qr_code_add", Some(id), mask_code(&value), "", None);
    bo.store
        .run_audited(&ctx.caller(), op, (bo.clock)(), logged)
        .await
        .map_err(|e| refused(&ctx, &e))?;
    tracing::info!(guest = id, user = ctx.session.user_id, "back office: app QR code added");
    Ok(Redirect::to(&format!("/admin/guests/{id}/qr")).into_response())
}

async fn gift_qr(State(bo): St, headers: HeaderMap, Path(id): Path<i64>) -> Page {
    let ctx = ctx(&bo, &headers, false)?;
    let tr = ctx.tr;
    let now = (bo.clock)();
    let org = ctx.session.org.clone();
    let Some(code) = issued_code(&bo, &org, id).await.map_err(|e| refused(&ctx, &e))? else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    if code.redeemed_at.is_some() {
        return Err(refused(&ctx, &LoyaltyError::GiftAlreadyUsed));
    }
    let key = qr_key(&bo, &ctx)?;
    let Some(g) = db::guest_page(&bo.store, &org, code.guest, now)
        .await
        .map_err(|e| refused(&ctx, &e))?
    else {
        return Err(refused(&ctx, &LoyaltyError::UnknownCode));
    };
    // The token names the guest too; the till identifies by the gift code. A guest with no code
    // of their own is named by the gift code again, which the token format allows.
    let guest_code = token_code(&g.identifiers).unwrap_or_else(|| code.code.clone());
    let offset = current_programme(&bo, &ctx).await?.utc_offset_minutes;
    let token = crate::scan::payload::sign_gift_token(&key.secret, &guest_code, &code.code, now);
    let lines = html! {
        h2 #what { (code.name) }
        p #who { (display_name(tr, &g.guest.name)) " · " span.nowrap { (g.guest.phone.as_deref().map(mask_phone).unwrap_or_default()) } }
        p { (tr.t_args("bo-rw-gift-cost", &[("points", Arg::Money(Kopecks(code.points)))])) }
    };
    audit(&bo, &ctx, "rw_qr_print", Some(code.guest), code.name.clone(), "", None).await;
    let until = local_time_text(now + key.max_age_secs, offset, "%Y-%m-%d %H:%M");
    let back = format!("/admin/guests/{}/rewards", code.guest);
    ticket(&ctx, &tr.t("bo-rw-gift-qr"), lines, &token, until, &back)
}

// ----- The QR code as SVG -----

/// The QR code's modules (true = dark), row by row, and its width; `None` if the text does not
/// fit a QR code.
pub fn qr_modules(text: &str) -> Option<(usize, Vec<bool>)> {
    let code = qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let dark = code.to_colors().into_iter().map(|c| c == qrcode::Color::Dark).collect();
    Some((width, dark))
}

/// Modules of white border on every side (the QR standard's quiet zone).
pub const QUIET_ZONE: usize = 4;

/// The QR code of `text` as an SVG: one unit per module, a white quiet zone of four, every dark
/// module a `M x y h1v1h-1z` square of one path (crisp edges, so a printer draws whole modules).
pub fn qr_svg(text: &str) -> Option<String> {
    let (width, dark) = qr_modules(text)?;
    let size = width + 2 * QUIET_ZONE;
    let mut path = String::with_capacity(dark.len() * 8);
    for (index, _) in dark.iter().enumerate().filter(|(_, dark)| **dark) {
        let (x, y) = (index % width + QUIET_ZONE, index / width + QUIET_ZONE);
        path.push_str(&format!("M{x} {y}h1v1h-1z"));
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" shape-rendering=\"crispEdges\" role=\"img\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

/// Reads an SVG [`qr_svg`] wrote back into pixels, `scale` per module: what a printer prints,
/// for checking that the till's decoder reads it.
pub fn rasterise_qr_svg(svg: &str, scale: u32) -> Option<image::GrayImage> {
    let size: u32 = svg.split("viewBox=\"0 0 ").nth(1)?.split(' ').next()?.parse().ok()?;
    let path = svg.split(" d=\"").nth(1)?.split('"').next()?;
    let mut img = image::GrayImage::from_pixel(size * scale, size * scale, image::Luma([255]));
    for square in path.split('M').filter(|s| !s.is_empty()) {
        let (x, rest) = square.split_once(' ')?;
        let y = rest.split('h').next()?;
        let (x, y): (u32, u32) = (x.parse().ok()?, y.parse().ok()?);
        for dy in 0..scale {
            for dx in 0..scale {
                img.put_pixel(x * scale + dx, y * scale + dy, image::Luma([0]));
            }
        }
    }
    Some(img)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qr::{QrPass, decode_passes};

    #[test]
    fn the_tills_decoder_reads_the_svg_and_the_token_verifies() {
        let secret = b"programme-key";
        let token = crate::scan::payload::sign_gift_token(secret, "GMB-00001234", "G1234567890", 1_741_608_000);
        let svg = qr_svg(&token).unwrap_or_default();
        let img = rasterise_qr_svg(&svg, 6).unwrap_or_else(|| image::GrayImage::new(1, 1));
        // rqrr, the till's own second decoder, alone; then the till's whole chain.
        assert_eq!(decode_passes(&img, &[QrPass::Rqrr]).as_deref(), Some(token.as_str()));
        assert_eq!(crate::qr::decode_luma(&img).as_deref(), Some(token.as_str()));
        let read = crate::scan::payload::parse_payload(&token, secret, 1_741_608_100, 600);
        assert_eq!(
            read.map(|p| p.identify_code().to_string()),
            Ok("G1234567890".to_string())
        );
    }

    #[test]
    fn a_guest_token_names_the_app_code_first_and_never_the_stripe() {
        let ids = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            token_code(&ids(&[("card_barcode", "2000000000015"), ("app_qr", "GMB-1")])).as_deref(),
            Some("GMB-1")
        );
        assert_eq!(
            token_code(&ids(&[("magnetic_stripe", "7001000010"), ("phone", "+79161234567")])),
            None
        );
        assert_eq!(
            token_code(&ids(&[("manual_code", "a.b")])),
            None,
            "a dot would break the token"
        );
    }

    #[test]
    fn hours_and_local_times_read_back() {
        assert_eq!(minutes("12:30"), Some(750));
        assert_eq!(minutes("24:00"), Some(1440));
        assert_eq!((minutes("24:01"), minutes("7"), minutes("ab:00")), (None, None, None));
        let at = local_time("2025-03-10T15:00", 180);
        assert_eq!(at, Some(1_741_608_000), "15:00 in +3 is 12:00 UTC");
        assert_eq!(
            local_time_text(1_741_608_000, 180, "%Y-%m-%dT%H:%M"),
            "2025-03-10T15:00"
        );
        assert_eq!(local_time("10.03.2025", 0), None);
    }
}
