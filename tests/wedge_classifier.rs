#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

//! The wedge burst classifier: thousands of generated human typing sequences and scanner bursts,
//! plus fixed cases (a card swipe, a short fast burst, a pause-ended burst, a stuck key).

mod common;

use common::Rng;
use loyalty_till::wedge::{BurstClassifier, BurstConfig, Keystroke, WedgeKey, WedgeOutput};

const SEQUENCES: usize = 2_000;
const SWIPE: &str = "%B4111111111111111^DOE/J^3012101?;4111111111111111=3012101?";

/// A printable ASCII character.
fn printable(rng: &mut Rng) -> char {
    char::from(rng.range(0x20, 0x7e) as u8)
}

/// One key press: its key-down and key-up.
struct Press {
    key: WedgeKey,
    ch: Option<char>,
    down_ms: u64,
    up_ms: u64,
}

/// A generated keystroke stream and what the classifier must make of it.
#[derive(Default)]
struct Script {
    presses: Vec<Press>,
    now_ms: u64,
    /// Every character in order, as `Typed` and scan texts together must give it back: a
    /// person's Enter and Tab as `'\n'` and `'\t'`, a scan's terminator left out.
    expected: String,
    /// Scan texts expected, in order.
    scans: Vec<String>,
    /// Key-down of the first character of each expected scan.
    scan_starts: Vec<u64>,
    scan_terminated: Vec<bool>,
}

impl Script {
    fn starting_at(now_ms: u64) -> Self {
        Self {
            now_ms,
            ..Self::default()
        }
    }

    fn press(&mut self, key: WedgeKey, ch: Option<char>, gap_ms: u64, hold_ms: u64) {
        self.now_ms += gap_ms;
        self.presses.push(Press {
            key,
            ch,
            down_ms: self.now_ms,
            up_ms: self.now_ms + hold_ms,
        });
    }

    /// A person: key-downs 60-400 ms apart, each key held 30-250 ms, so the next key often goes
    /// down before the previous one is up. `first_gap_ms` is the gap before the first key.
    fn human(&mut self, rng: &mut Rng, len: u64, first_gap_ms: u64, enter: bool) {
        for i in 0..len {
            let gap = if i == 0 { first_gap_ms } else { rng.range(60, 400) };
            let ch = printable(rng);
            self.press(WedgeKey::Char, Some(ch), gap, rng.range(30, 250));
            self.expected.push(ch);
        }
        if enter {
            self.press(WedgeKey::Enter, None, rng.range(60, 400), rng.range(30, 250));
            self.expected.push('\n');
        }
    }

    /// A scanner: key-downs 0-50 ms apart, each key released before the next goes down.
    fn burst(&mut self, rng: &mut Rng, text: &str, first_gap_ms: u64, terminator: Option<WedgeKey>) {
        for (i, ch) in text.chars().enumerate() {
            let gap = if i == 0 { first_gap_ms } else { rng.range(0, 50) };
            self.press(WedgeKey::Char, Some(ch), gap, 0);
            if i == 0 {
                self.scan_starts.push(self.now_ms);
            }
        }
        if let Some(key) = terminator {
            self.press(key, None, rng.range(0, 50), 0);
        }
        self.expected.push_str(text);
        self.scans.push(text.to_string());
        self.scan_terminated.push(terminator.is_some());
    }

    /// Key events in time order. A key goes up before it is pressed again, and key-ups a scanner
    /// sends come right after their key-downs, before the next key-down.
    fn events(&self, rng: &mut Rng) -> Vec<Keystroke> {
        let mut events = Vec::new();
        for (i, press) in self.presses.iter().enumerate() {
            let next_down = self.presses.get(i + 1).map_or(u64::MAX, |next| next.down_ms);
            let next_same = self.presses[i + 1..]
                .iter()
                .find(|later| later.key == press.key && later.ch == press.ch)
                .map_or(u64::MAX, |later| later.down_ms);
            let up_ms = if press.up_ms == press.down_ms {
                // Scanner key: up somewhere between its own key-down and the next one.
                press.down_ms + rng.range(0, next_down.min(press.down_ms + 50) - press.down_ms)
            } else {
                press.up_ms
            };
            events.push(keystroke(press, press.down_ms, true));
            events.push(keystroke(press, up_ms.min(next_same), false));
        }
        // Stable: at equal times, events keep the order above (a key-down before its own key-up,
        // a key-up before a later press of the same key).
        events.sort_by_key(|k| k.at_ms);
        events
    }
}

fn keystroke(press: &Press, at_ms: u64, down: bool) -> Keystroke {
    Keystroke {
        ch: press.ch,
        key: press.key,
        at_ms,
        down,
    }
}

fn char_key(ch: char, at_ms: u64, down: bool) -> Keystroke {
    Keystroke {
        ch: Some(ch),
        key: WedgeKey::Char,
        at_ms,
        down,
    }
}

fn enter(at_ms: u64) -> Keystroke {
    Keystroke {
        ch: None,
        key: WedgeKey::Enter,
        at_ms,
        down: true,
    }
}

/// Feeds all events, then lets enough time pass for everything to be released. With
/// `tick_every_ms`, also ticks in between, as the window does every frame.
fn classify(events: &[Keystroke], tick_every_ms: Option<u64>) -> Vec<WedgeOutput> {
    let mut classifier = BurstClassifier::new(BurstConfig::default());
    let mut out = Vec::new();
    let mut next_tick = events.first().map_or(0, |k| k.at_ms);
    for &k in events {
        if let Some(every) = tick_every_ms {
            while next_tick < k.at_ms {
                out.extend(classifier.tick(next_tick));
                next_tick += every;
            }
        }
        out.extend(classifier.push(k));
    }
    let end = events.last().map_or(0, |k| k.at_ms) + 10_000;
    out.extend(classifier.tick(end));
    out
}

/// Joins neighbouring `Typed` outputs, which may be split differently depending on ticks.
fn normalise(outputs: Vec<WedgeOutput>) -> Vec<WedgeOutput> {
    let mut joined: Vec<WedgeOutput> = Vec::new();
    for output in outputs {
        match (joined.last_mut(), output) {
            (Some(WedgeOutput::Typed(before)), WedgeOutput::Typed(text)) => before.push_str(&text),
            (_, output) => joined.push(output),
        }
    }
    joined
}

fn all_text(outputs: &[WedgeOutput]) -> String {
    outputs
        .iter()
        .map(|output| match output {
            WedgeOutput::Typed(text) | WedgeOutput::Scan { text, .. } => text.as_str(),
        })
        .collect()
}

fn scans(outputs: &[WedgeOutput]) -> Vec<(String, u64, bool)> {
    outputs
        .iter()
        .filter_map(|output| match output {
            WedgeOutput::Scan {
                text,
                started_ms,
                terminated,
                ..
            } => Some((text.clone(), *started_ms, *terminated)),
            WedgeOutput::Typed(_) => None,
        })
        .collect()
}

fn human_script(rng: &mut Rng) -> Script {
    let mut script = Script::starting_at(rng.range(0, 1_000_000));
    let len = rng.range(1, 30);
    let enter = rng.chance(2);
    script.human(rng, len, 0, enter);
    script
}

fn burst_script(rng: &mut Rng) -> Script {
    let mut script = Script::starting_at(rng.range(0, 1_000_000));
    let mut gap_before_burst = 0;
    if rng.chance(3) {
        let len = rng.range(1, 5);
        script.human(rng, len, 0, false);
        gap_before_burst = rng.range(60, 400);
    }
    let text: String = (0..rng.range(6, 40)).map(|_| printable(rng)).collect();
    let terminator = match rng.range(0, 2) {
        0 => None,
        1 => Some(WedgeKey::Enter),
        _ => Some(WedgeKey::Tab),
    };
    script.burst(rng, &text, gap_before_burst, terminator);
    if rng.chance(3) {
        // Without a terminator, only a pause of at least `end_gap_ms` ends the burst.
        let gap = if terminator.is_some() {
            rng.range(60, 400)
        } else {
            rng.range(120, 400)
        };
        let len = rng.range(1, 5);
        let enter = rng.chance(2);
        script.human(rng, len, gap, enter);
    }
    script
}

#[derive(Default)]
struct Figures {
    human: usize,
    human_as_scan: usize,
    bursts: usize,
    bursts_missed: usize,
    streams_wrong: usize,
    tick_dependent: usize,
}

/// Classifies one script with and without frame ticks; returns the untick'd outputs.
fn run(script: &Script, rng: &mut Rng, figures: &mut Figures) -> Vec<WedgeOutput> {
    let events = script.events(rng);
    let outputs = classify(&events, None);
    let ticked = classify(&events, Some(rng.range(1, 40)));
    if normalise(ticked) != normalise(outputs.clone()) {
        figures.tick_dependent += 1;
    }
    if all_text(&outputs) != script.expected {
        figures.streams_wrong += 1;
    }
    outputs
}

#[test]
fn generated_typing_and_bursts_are_told_apart() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut figures = Figures::default();
    for _ in 0..SEQUENCES {
        let script = human_script(&mut rng);
        let outputs = run(&script, &mut rng, &mut figures);
        figures.human += 1;
        if !scans(&outputs).is_empty() {
            figures.human_as_scan += 1;
        }
    }
    for _ in 0..SEQUENCES {
        let script = burst_script(&mut rng);
        let outputs = run(&script, &mut rng, &mut figures);
        figures.bursts += 1;
        let expected: Vec<(String, u64, bool)> = script
            .scans
            .iter()
            .zip(&script.scan_starts)
            .zip(&script.scan_terminated)
            .map(|((text, start), terminated)| (text.clone(), *start, *terminated))
            .collect();
        if scans(&outputs) != expected {
            figures.bursts_missed += 1;
        }
    }
    println!(
        "human sequences: {}, classified as scan: {}; scanner bursts: {}, not found as exactly one \
         scan with the exact text: {}; sequences whose released text differs from the input: {}; \
         sequences whose result depends on ticks: {}",
        figures.human,
        figures.human_as_scan,
        figures.bursts,
        figures.bursts_missed,
        figures.streams_wrong,
        figures.tick_dependent
    );
    assert_eq!(figures.human, SEQUENCES);
    assert_eq!(figures.bursts, SEQUENCES);
    assert_eq!(figures.human_as_scan, 0);
    assert_eq!(figures.bursts_missed, 0);
    assert_eq!(figures.streams_wrong, 0);
    assert_eq!(figures.tick_dependent, 0);
}

/// Presses and releases each character `gap_ms` apart from `start_ms`, then Enter after one more gap.
fn fast_keys(text: &str, start_ms: u64, gap_ms: u64, with_enter: bool) -> Vec<Keystroke> {
    let mut events = Vec::new();
    let mut at = start_ms;
    for ch in text.chars() {
        events.push(char_key(ch, at, true));
        events.push(char_key(ch, at + 1, false));
        at += gap_ms;
    }
    if with_enter {
        events.push(enter(at));
    }
    events
}

#[test]
fn card_swipe_in_5_ms_gaps_is_one_scan() {
    let events = fast_keys(SWIPE, 10_000, 5, true);
    let outputs = classify(&events, Some(16));
    let expected = WedgeOutput::Scan {
        text: SWIPE.to_string(),
        started_ms: 10_000,
        ended_ms: 10_000 + 5 * SWIPE.chars().count() as u64,
        terminated: true,
    };
    assert_eq!(outputs, vec![expected]);
}

#[test]
fn short_fast_burst_is_typing() {
    let outputs = classify(&fast_keys("123", 0, 5, true), None);
    assert_eq!(outputs, vec![WedgeOutput::Typed("123\n".to_string())]);
}

#[test]
fn unterminated_burst_ends_with_a_pause() {
    let mut classifier = BurstClassifier::default();
    for k in fast_keys("100001", 1_000, 10, false) {
        assert!(classifier.push(k).is_empty());
    }
    // Last key-down at 1_050: nothing is certain until the pause of 120 ms is complete.
    assert!(classifier.tick(1_169).is_empty());
    let expected = WedgeOutput::Scan {
        text: "100001".to_string(),
        started_ms: 1_000,
        ended_ms: 1_050,
        terminated: false,
    };
    assert_eq!(classifier.tick(1_170), vec![expected]);
    assert!(classifier.tick(5_000).is_empty());
}

#[test]
fn burst_of_600_characters_is_typing() {
    let text: String = (0..600).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
    let outputs = classify(&fast_keys(&text, 0, 5, true), Some(16));
    assert!(scans(&outputs).is_empty());
    assert!(outputs.iter().all(|o| matches!(o, WedgeOutput::Typed(_))));
    assert_eq!(all_text(&outputs), format!("{text}\n"));
}

#[test]
fn scan_right_after_a_human_keystroke_is_found() {
    let mut events = vec![char_key('1', 0, true), char_key('1', 120, false)];
    events.extend(fast_keys("100001", 300, 8, true));
    let outputs = classify(&events, None);
    let scan = WedgeOutput::Scan {
        text: "100001".to_string(),
        started_ms: 300,
        ended_ms: 348,
        terminated: true,
    };
    assert_eq!(outputs, vec![WedgeOutput::Typed("1".to_string()), scan]);
}

/// A fast typist: key-downs mostly 60-250 ms apart, but a third of them 30-50 ms after the one
/// before (a practised digraph) and one in seven 0-15 ms after it (two keys rolled over, pressed
/// almost at once while the first is still held); each key held 60-150 ms, so keys overlap.
fn fast_typist_script(rng: &mut Rng) -> Script {
    let mut script = Script::starting_at(rng.range(0, 1_000_000));
    let gap = |rng: &mut Rng| match rng.range(0, 20) {
        0..=2 => rng.range(0, 15),
        3..=9 => rng.range(30, 50),
        _ => rng.range(60, 250),
    };
    for i in 0..rng.range(1, 30) {
        let ch = printable(rng);
        let g = if i == 0 { 0 } else { gap(rng) };
        script.press(WedgeKey::Char, Some(ch), g, rng.range(60, 150));
        script.expected.push(ch);
    }
    if rng.chance(2) {
        let g = gap(rng);
        script.press(WedgeKey::Enter, None, g, rng.range(60, 150));
        script.expected.push('\n');
    }
    script
}

/// The longest run of consecutive character key-downs each at most `max_gap_ms` after the one
/// before: what the rule looks at.
fn longest_fast_run(script: &Script, max_gap_ms: u64) -> usize {
    let mut longest = 0;
    let mut run = 0;
    let mut last: Option<u64> = None;
    for press in script.presses.iter().filter(|p| p.key == WedgeKey::Char) {
        run = match last {
            Some(at) if press.down_ms - at <= max_gap_ms => run + 1,
            _ => 1,
        };
        longest = longest.max(run);
        last = Some(press.down_ms);
    }
    longest
}

/// What happens to fast typists. Whatever they type comes out, every character once and in
/// order. Only a run of six or more keys each within 50 ms of the last (the rule's `min_len`
/// and `max_gap_ms`) can be taken for a scan; then it goes to `identify` instead of the field
/// (nothing is lost, but it is not typing). The figures say how often that happens to this
/// typist.
#[test]
fn fast_typists_lose_nothing_and_only_six_fast_keys_in_a_row_can_look_like_a_scan() {
    let mut rng = Rng(0x51ed_270b_2d3e_a4f1);
    let (mut with_fast_run, mut taken_for_scan, mut streams_wrong, mut tick_dependent) = (0, 0, 0, 0);
    for _ in 0..SEQUENCES {
        let script = fast_typist_script(&mut rng);
        let events = script.events(&mut rng);
        let outputs = classify(&events, None);
        if normalise(classify(&events, Some(rng.range(1, 40)))) != normalise(outputs.clone()) {
            tick_dependent += 1;
        }
        let found = scans(&outputs);
        // A scan's terminator is not part of its text; everything else comes out as typed.
        let mut expected = script.expected.clone();
        if found.last().is_some_and(|(_, _, terminated)| *terminated) {
            expected.pop();
        }
        if all_text(&outputs) != expected {
            streams_wrong += 1;
        }
        let fast_run = longest_fast_run(&script, BurstConfig::default().max_gap_ms);
        if fast_run >= BurstConfig::default().min_len {
            with_fast_run += 1;
            taken_for_scan += usize::from(!found.is_empty());
        } else {
            assert!(
                found.is_empty(),
                "a typist with at most {fast_run} fast keys in a row taken for a scan"
            );
        }
    }
    println!(
        "fast typists: {SEQUENCES} sequences of 1-30 keys; {with_fast_run} hold six or more keys \
         each within 50 ms of the last, {taken_for_scan} of them taken for a scan; released text \
         differs from the input in {streams_wrong}; depends on ticks in {tick_dependent}"
    );
    assert_eq!(streams_wrong, 0, "nothing lost or reordered");
    assert_eq!(tick_dependent, 0);
}

/// The limit, case by case: six keys rolled over 30-50 ms apart. Followed by the next key 80 ms
/// later, they stay typing; followed by a pause of 120 ms or by Enter within 50 ms, they are
/// taken for a scan.
#[test]
fn six_keys_in_a_row_under_50_ms_are_the_limit() {
    let typed = |gaps: &[u64], after: Option<(u64, Keystroke)>| {
        let mut events = Vec::new();
        let mut at = 1_000;
        for (i, ch) in "123456".chars().enumerate() {
            at += if i == 0 { 0 } else { gaps[i - 1] };
            events.push(char_key(ch, at, true));
            // Held 90 ms: the next keys go down before it comes up.
            events.push(char_key(ch, at + 90, false));
        }
        if let Some((gap, mut key)) = after {
            key.at_ms = at + gap;
            events.push(key);
        }
        events.sort_by_key(|k| k.at_ms);
        classify(&events, Some(16))
    };
    let rolled = [30, 50, 35, 45, 40];
    // Five fast keys and a slower one: typing.
    let outputs = typed(&[30, 50, 35, 45, 60], None);
    assert_eq!(normalise(outputs), vec![WedgeOutput::Typed("123456".into())]);
    // Six fast keys, then the next key 80 ms later: ambiguous, released as typing.
    let outputs = typed(&rolled, Some((80, char_key('7', 0, true))));
    assert_eq!(normalise(outputs), vec![WedgeOutput::Typed("1234567".into())]);
    // Six fast keys, then a pause: taken for a scan.
    let outputs = typed(&rolled, None);
    assert_eq!(scans(&outputs), vec![("123456".to_string(), 1_000, false)]);
    // Six fast keys, then Enter 40 ms later: taken for a scan.
    let outputs = typed(&rolled, Some((40, enter(0))));
    assert_eq!(scans(&outputs), vec![("123456".to_string(), 1_000, true)]);
}
