//! The serial framer: a byte stream cut into reads, whatever the chunking and the pauses.
//!
//! Input: 4 header bytes (terminator, max frame length, idle gap, chunking seed), then the
//! stream. Checked: the same stream split anywhere at one instant gives the same events as in one
//! piece; with pauses, frames are non-empty, within the limit, free of their terminator, appear
//! in the stream in order, and frames plus dropped bytes never add up to more than was fed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loyalty_till::devices::framing::{DropReason, FrameEvent, Framer, FramingConfig, Terminator};
use loyalty_till_fuzz::{Input, XorShift};

const TERMINATORS: [Terminator; 5] = [
    Terminator::Cr,
    Terminator::Lf,
    Terminator::CrLf,
    Terminator::Etx,
    Terminator::IdleGap,
];

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let terminator = TERMINATORS[usize::from(input.u8()) % TERMINATORS.len()];
    // Small limits, zero (a misconfiguration) included, so that reads overflow often.
    let max_frame_len = match input.u8() {
        255 => FramingConfig::default().max_frame_len,
        n => usize::from(n),
    };
    let config = FramingConfig {
        terminator,
        max_frame_len,
        idle_gap_ms: u64::from(input.u8()) * 10,
    };
    let seed = input.u8();
    let stream = input.rest();

    chunking_does_not_matter(&config, stream, seed);
    pauses_keep_the_invariants(&config, stream, seed);
});

/// At one instant only the bytes decide: noise reports may be split, nothing else.
fn chunking_does_not_matter(config: &FramingConfig, stream: &[u8], seed: u8) {
    // In idle-gap mode a zero gap ends a read at every call: chunking is then meaningful.
    if config.terminator == Terminator::IdleGap && config.idle_gap_ms == 0 {
        return;
    }
    let mut whole = Framer::new(config.clone());
    let mut expected = whole.push(stream, 0);
    expected.extend(whole.reset());

    let mut chunked = Framer::new(config.clone());
    let mut rng = XorShift::new(seed);
    let mut events = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let end = (at + 1 + rng.below(24) as usize).min(stream.len());
        events.extend(chunked.push(&stream[at..end], 0));
        if rng.below(4) == 0 {
            events.extend(chunked.tick(0));
        }
        at = end;
    }
    events.extend(chunked.reset());
    assert_eq!(merge_noise(events), merge_noise(expected));
}

fn pauses_keep_the_invariants(config: &FramingConfig, stream: &[u8], seed: u8) {
    let mut framer = Framer::new(config.clone());
    let mut rng = XorShift::new(seed.wrapping_add(1));
    let mut check = Check {
        config,
        stream,
        fed: 0,
        out: 0,
        next_search: 0,
    };
    let (mut at, mut now) = (0, 0u64);
    while at < stream.len() {
        let end = (at + 1 + rng.below(32) as usize).min(stream.len());
        // Pauses around the idle gap and around the incomplete limit (2 s at least).
        now += match rng.below(4) {
            0 => 0,
            1 => rng.below(config.idle_gap_ms + 2),
            2 => rng.below(200),
            _ => rng.below(config.incomplete_after_ms() + 2),
        };
        check.fed = end;
        check.events(framer.push(&stream[at..end], now));
        if rng.below(3) == 0 {
            now += rng.below(config.idle_gap_ms + 2);
            check.events(framer.tick(now));
        }
        at = end;
    }
    check.events(framer.tick(now.saturating_add(1_000_000)));
    // A long pause ends whatever was pending: as a read in idle-gap mode, else as incomplete.
    assert!(!framer.is_mid_frame());
    check.events(framer.reset());
    assert!(!framer.is_mid_frame());
    assert_eq!(framer.reset(), vec![]);
}

struct Check<'a> {
    config: &'a FramingConfig,
    stream: &'a [u8],
    /// Bytes pushed so far.
    fed: usize,
    /// Bytes reported so far, in frames and as dropped.
    out: usize,
    /// Where the next frame is looked for in the stream.
    next_search: usize,
}

impl Check<'_> {
    fn events(&mut self, events: Vec<FrameEvent>) {
        for event in events {
            match event {
                FrameEvent::Frame(frame) => {
                    assert!(!frame.is_empty());
                    assert!(frame.len() <= self.config.max_frame_len);
                    let terminator = match self.config.terminator {
                        Terminator::Cr => Some(b'\r'),
                        Terminator::Lf | Terminator::CrLf => Some(b'\n'),
                        Terminator::Etx => Some(0x03),
                        Terminator::IdleGap => None,
                    };
                    assert!(terminator.is_none_or(|t| !frame.contains(&t)));
                    if self.config.terminator == Terminator::IdleGap {
                        assert!(!matches!(frame.last(), Some(b'\r' | b'\n')));
                    }
                    // A frame starts with a byte that may start a read: no control byte, and no
                    // byte that cannot begin a UTF-8 character.
                    let first = frame[0];
                    assert!(first >= 0x20 && first != 0x7F && !(0x80..=0xC1).contains(&first) && first < 0xF5);
                    // Frames are cut out of the stream in order, never made up.
                    let rest = &self.stream[self.next_search..self.fed];
                    let found = rest
                        .windows(frame.len())
                        .position(|w| w == frame.as_slice())
                        .expect("a frame that is not part of the stream");
                    self.next_search += found + frame.len();
                    self.out += frame.len();
                }
                FrameEvent::Dropped { len, reason } => {
                    assert!(len > 0);
                    if reason == DropReason::TooLong {
                        assert!(len > self.config.max_frame_len);
                    }
                    self.out += len;
                }
            }
            assert!(self.out <= self.fed, "more bytes out than were fed");
        }
    }
}

/// Adjacent noise reports as one: where a quiet moment splits them is not part of the contract.
fn merge_noise(events: Vec<FrameEvent>) -> Vec<FrameEvent> {
    let mut merged: Vec<FrameEvent> = Vec::new();
    for event in events {
        if let (
            Some(FrameEvent::Dropped {
                len,
                reason: DropReason::Noise,
            }),
            FrameEvent::Dropped {
                len: more,
                reason: DropReason::Noise,
            },
        ) = (merged.last_mut(), &event)
        {
            *len += more;
            continue;
        }
        merged.push(event);
    }
    merged
}
