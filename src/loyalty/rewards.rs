//! Stamp cards, promotions and gifts as the back office defines them and the till shows them:
//! what a valid definition is, and when a promotion runs. Pure functions over plain data; the
//! engine checks a definition here before a store writes it, and both stores pass the
//! promotions they read through [`current_promotions`] for the guest card.

use crate::domain::{LoyaltyError, Promotion, RewardProblem, UnixSeconds};
use crate::money::Kopecks;
use serde::{Deserialize, Serialize};

/// A name or reward text longer than this is refused.
pub const MAX_TEXT_CHARS: usize = 100;
/// A promotion's description longer than this is refused.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// More stamps than this on one card is a typing mistake, not a programme.
pub const MAX_STAMPS: i64 = 100;
/// A POS item code is at most this long (iiko's article codes are far shorter).
pub const MAX_POS_CODE_LEN: usize = 64;
/// A gift costs at most 1 000 000,00 points.
pub const MAX_GIFT_POINTS: Kopecks = Kopecks(100_000_000);
/// Every weekday, Monday (bit 0) to Sunday (bit 6).
pub const ALL_WEEKDAYS: i64 = 0b111_1111;
pub const MINUTES_PER_DAY: i64 = 1_440;

/// A stamp card: a stamp per paid visit, the reward when `needed` are collected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampCardDef {
    pub name: String,
    pub needed: i64,
    pub reward: String,
}

/// A promotion the till shows on the guest card while it runs: between `starts_at` (included)
/// and `ends_at` (excluded), on the weekdays of `weekdays`, in the hours from `day_start_min` to
/// `day_end_min` (minutes after local midnight, the end excluded), in the programme's time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionDef {
    pub name: String,
    pub description: String,
    pub starts_at: UnixSeconds,
    pub ends_at: UnixSeconds,
    pub weekdays: i64,
    pub day_start_min: i64,
    pub day_end_min: i64,
}

/// A gift of the catalogue: what a gift code gives, the POS item it is rung up as, and what it
/// costs in points. A gift switched off keeps its codes issued already but gets no new ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiftDef {
    pub name: String,
    pub pos_code: String,
    pub points: Kopecks,
    pub active: bool,
}

fn refused(problem: RewardProblem) -> LoyaltyError {
    LoyaltyError::InvalidReward(problem)
}

/// Trimmed, not empty, at most `max` characters, no control characters.
pub fn clean_text(text: &str, max: usize, problem: RewardProblem) -> Result<String, LoyaltyError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(refused(problem));
    }
    Ok(text.to_string())
}

/// The card as it is stored, or why it is refused.
pub fn check_stamp_card(card: &StampCardDef) -> Result<StampCardDef, LoyaltyError> {
    if !(1..=MAX_STAMPS).contains(&card.needed) {
        return Err(refused(RewardProblem::StampsNeeded));
    }
    Ok(StampCardDef {
        name: clean_text(&card.name, MAX_TEXT_CHARS, RewardProblem::Name)?,
        needed: card.needed,
        reward: clean_text(&card.reward, MAX_TEXT_CHARS, RewardProblem::Reward)?,
    })
}

/// The promotion as it is stored, or why it is refused. An empty description is allowed.
pub fn check_promotion(promotion: &PromotionDef) -> Result<PromotionDef, LoyaltyError> {
    let name = clean_text(&promotion.name, MAX_TEXT_CHARS, RewardProblem::Name)?;
    let description = promotion.description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS || description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(refused(RewardProblem::Name));
    }
    if promotion.ends_at <= promotion.starts_at {
        return Err(refused(RewardProblem::EndBeforeStart));
    }
    if !(1..=ALL_WEEKDAYS).contains(&promotion.weekdays) {
        return Err(refused(RewardProblem::NoWeekday));
    }
    let hours_fit = (0..MINUTES_PER_DAY).contains(&promotion.day_start_min)
        && (1..=MINUTES_PER_DAY).contains(&promotion.day_end_min)
        && promotion.day_start_min < promotion.day_end_min;
    if !hours_fit {
        return Err(refused(RewardProblem::Hours));
    }
    Ok(PromotionDef {
        name,
        description: description.to_string(),
        ..promotion.clone()
    })
}

/// The gift as it is stored, or why it is refused: `others` are the organisation's gifts (id and
/// definition), `id` this gift's when it is an edit. POS item codes are unique in the
/// organisation, since the POS rings a gift up by its code.
pub fn check_gift(gift: &GiftDef, others: &[(i64, GiftDef)], id: Option<i64>) -> Result<GiftDef, LoyaltyError> {
    let name = clean_text(&gift.name, MAX_TEXT_CHARS, RewardProblem::Name)?;
    let pos_code = gift.pos_code.trim();
    if pos_code.is_empty() || pos_code.len() > MAX_POS_CODE_LEN || !pos_code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refused(RewardProblem::PosCode));
    }
    if gift.points < Kopecks::ZERO || gift.points > MAX_GIFT_POINTS {
        return Err(refused(RewardProblem::Cost));
    }
    if others
        .iter()
        .any(|(other, def)| Some(*other) != id && def.pos_code == pos_code)
    {
        return Err(refused(RewardProblem::PosCodeTaken));
    }
    Ok(GiftDef {
        name,
        pos_code: pos_code.to_string(),
        points: gift.points,
        active: gift.active,
    })
}

/// Monday 0 … Sunday 6 of a local day number (days since 1970-01-01, a Thursday).
fn weekday_of_day(day: i64) -> i64 {
    (day + 3).rem_euclid(7)
}

/// Whether the promotion runs at `now` in a programme `utc_offset_minutes` from UTC.
pub fn promotion_on(promotion: &PromotionDef, now: UnixSeconds, utc_offset_minutes: i64) -> bool {
    if now < promotion.starts_at || now >= promotion.ends_at {
        return false;
    }
    let local = now + utc_offset_minutes * 60;
    let day = local.div_euclid(86_400);
    let minute = local.rem_euclid(86_400) / 60;
    promotion.weekdays & (1 << weekday_of_day(day)) != 0
        && promotion.day_start_min <= minute
        && minute < promotion.day_end_min
}

/// The promotions of the guest card at `now`: those of `rows` (each with its programme's UTC
/// offset) that run, soonest ending first.
pub fn current_promotions(rows: Vec<(PromotionDef, i64)>, now: UnixSeconds) -> Vec<Promotion> {
    let mut on: Vec<Promotion> = rows
        .into_iter()
        .filter(|(promotion, offset)| promotion_on(promotion, now, *offset))
        .map(|(promotion, _)| Promotion {
            name: promotion.name,
            description: promotion.description,
            ends_at: promotion.ends_at,
        })
        .collect();
    // Stable: rows come in id order, so promotions ending together keep it.
    on.sort_by_key(|p| p.ends_at);
    on
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-03-10 12:00 UTC, a Monday.
    const MONDAY_NOON: UnixSeconds = 1_741_608_000;

    fn promotion(weekdays: i64, start: i64, end: i64) -> PromotionDef {
        PromotionDef {
            name: "Ланч".to_string(),
            description: String::new(),
            starts_at: MONDAY_NOON - 86_400 * 30,
            ends_at: MONDAY_NOON + 86_400 * 30,
            weekdays,
            day_start_min: start,
            day_end_min: end,
        }
    }

    #[test]
    fn a_promotion_runs_on_its_weekdays_and_hours_in_local_time() {
        let weekdays_lunch = promotion(0b001_1111, 12 * 60, 15 * 60);
        assert!(promotion_on(&weekdays_lunch, MONDAY_NOON, 0), "Monday 12:00 UTC");
        assert!(
            !promotion_on(&weekdays_lunch, MONDAY_NOON - 60, 0),
            "11:59 is before the hours"
        );
        assert!(
            !promotion_on(&weekdays_lunch, MONDAY_NOON + 3 * 3600, 0),
            "15:00 is the end, excluded"
        );
        assert!(promotion_on(&weekdays_lunch, MONDAY_NOON + 3 * 3600 - 1, 0));
        // Moscow (+3 h): 12:00 UTC is 15:00 local, past the hours; 09:00 UTC is noon local.
        assert!(!promotion_on(&weekdays_lunch, MONDAY_NOON, 180));
        assert!(promotion_on(&weekdays_lunch, MONDAY_NOON - 3 * 3600, 180));
        // Saturday and Sunday are off; Friday is on.
        assert!(!promotion_on(&weekdays_lunch, MONDAY_NOON + 5 * 86_400, 0), "Saturday");
        assert!(!promotion_on(&weekdays_lunch, MONDAY_NOON + 6 * 86_400, 0), "Sunday");
        assert!(promotion_on(&weekdays_lunch, MONDAY_NOON + 4 * 86_400, 0), "Friday");
        // A local day that differs from the UTC day: Sunday 23:30 UTC is Monday 02:30 in +3.
        let night = promotion(0b000_0001, 0, 3 * 60);
        assert!(promotion_on(&night, MONDAY_NOON - 12 * 3600 - 30 * 60, 180));
        assert!(!promotion_on(&night, MONDAY_NOON - 12 * 3600 - 30 * 60, 0));
    }

    #[test]
    fn a_promotion_runs_only_between_its_dates() {
        let always = promotion(ALL_WEEKDAYS, 0, MINUTES_PER_DAY);
        assert!(promotion_on(&always, always.starts_at, 0));
        assert!(!promotion_on(&always, always.starts_at - 1, 0));
        assert!(!promotion_on(&always, always.ends_at, 0));
        let shown = current_promotions(
            vec![
                (promotion(0b100_0000, 0, MINUTES_PER_DAY), 0),
                (
                    PromotionDef {
                        ends_at: MONDAY_NOON + 60,
                        ..always.clone()
                    },
                    0,
                ),
                (always.clone(), 0),
            ],
            MONDAY_NOON,
        );
        assert_eq!(
            shown.iter().map(|p| p.ends_at).collect::<Vec<_>>(),
            [MONDAY_NOON + 60, always.ends_at],
            "Sunday's is off; the soonest ending first"
        );
    }

    #[test]
    fn bad_definitions_are_refused_with_the_reason() {
        let card = |needed| StampCardDef {
            name: " Кофе ".to_string(),
            needed,
            reward: "Кофе в подарок".to_string(),
        };
        assert_eq!(check_stamp_card(&card(6)).map(|c| c.name), Ok("Кофе".to_string()));
        for needed in [0, -1, MAX_STAMPS + 1] {
            assert_eq!(
                check_stamp_card(&card(needed)),
                Err(LoyaltyError::InvalidReward(RewardProblem::StampsNeeded))
            );
        }
        let blank = StampCardDef {
            reward: "  ".to_string(),
            ..card(6)
        };
        assert_eq!(
            check_stamp_card(&blank),
            Err(LoyaltyError::InvalidReward(RewardProblem::Reward))
        );

        let backwards = PromotionDef {
            ends_at: MONDAY_NOON - 86_400 * 31,
            ..promotion(ALL_WEEKDAYS, 0, MINUTES_PER_DAY)
        };
        assert_eq!(
            check_promotion(&backwards),
            Err(LoyaltyError::InvalidReward(RewardProblem::EndBeforeStart))
        );
        assert_eq!(
            check_promotion(&promotion(0, 0, 60)),
            Err(LoyaltyError::InvalidReward(RewardProblem::NoWeekday))
        );
        for (start, end) in [(600, 600), (700, 600), (-1, 60), (0, MINUTES_PER_DAY + 1)] {
            assert_eq!(
                check_promotion(&promotion(1, start, end)),
                Err(LoyaltyError::InvalidReward(RewardProblem::Hours)),
                "{start}..{end}"
            );
        }
        assert!(check_promotion(&promotion(1, 0, MINUTES_PER_DAY)).is_ok());

        let gift = |pos: &str, points| GiftDef {
            name: "Капучино".to_string(),
            pos_code: pos.to_string(),
            points: Kopecks(points),
            active: true,
        };
        let others = [(1, gift("1001", 15_000))];
        assert_eq!(
            check_gift(&gift("1002", -1), &others, None),
            Err(LoyaltyError::InvalidReward(RewardProblem::Cost))
        );
        assert_eq!(
            check_gift(&gift(" 1001 ", 100), &others, None),
            Err(LoyaltyError::InvalidReward(RewardProblem::PosCodeTaken))
        );
        assert_eq!(
            check_gift(&gift("1001", 100), &others, Some(1)).map(|g| g.points),
            Ok(Kopecks(100)),
            "a gift keeps its own code when edited"
        );
        assert_eq!(
            check_gift(&gift("кофе", 100), &others, None),
            Err(LoyaltyError::InvalidReward(RewardProblem::PosCode))
        );
        assert_eq!(
            check_gift(&gift("1002", 0), &others, None).map(|g| g.points),
            Ok(Kopecks::ZERO)
        );
    }
}
