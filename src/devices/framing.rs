//! Cuts the byte stream of a serial scanner or card reader into reads ("frames"). Pure: no I/O
//! and no clock. Times come in as milliseconds of any monotonic clock, so that the same rules run
//! in the reader thread and in tests with made-up times.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How the device ends one read. Scanners are configured with a suffix; this must match it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Terminator {
    /// `\r`; an `\n` right after it is swallowed, so a device sending CR LF does not produce
    /// empty reads.
    #[default]
    Cr,
    /// `\n`; a `\r` just before it is removed.
    Lf,
    /// `\r\n`. A read ends at the `\n` and the `\r` is removed; a lone `\n` ends a read too,
    /// because dropping the read would be worse than accepting a sloppy suffix.
    CrLf,
    /// ETX (0x03), usually with an STX (0x02) prefix, which is skipped.
    Etx,
    /// No suffix: a read ends when no byte came for `idle_gap_ms`.
    IdleGap,
}

/// How reads are cut out of the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FramingConfig {
    pub terminator: Terminator,
    /// With [`Terminator::IdleGap`], the pause that ends a read. With a real terminator, a
    /// partial read idle for 10 × this (at least [`MIN_INCOMPLETE_MS`]) is dropped as incomplete,
    /// and leading noise is reported after this pause.
    pub idle_gap_ms: u64,
    /// Longer reads are dropped whole: no code of ours is near this, so it is a stuck trigger,
    /// a wrong baud rate or another device on the port.
    pub max_frame_len: usize,
}

/// The shortest wait before a partial read is given up, whatever `idle_gap_ms` says: a slow
/// device at 1200 baud must still get its read through.
pub const MIN_INCOMPLETE_MS: u64 = 2_000;

impl Default for FramingConfig {
    fn default() -> Self {
        FramingConfig {
            terminator: Terminator::Cr,
            // Scanners send a read in one burst; 100 ms is far above the gaps inside a burst on
            // USB-serial adapters and still below what a cashier notices.
            idle_gap_ms: 100,
            max_frame_len: 1024,
        }
    }
}

impl FramingConfig {
    /// How long a partial read may wait for its terminator.
    pub fn incomplete_after_ms(&self) -> u64 {
        self.idle_gap_ms.saturating_mul(10).max(MIN_INCOMPLETE_MS)
    }
}

/// Why bytes were thrown away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Non-printable bytes before a read: line noise, a device's power-on garbage.
    Noise,
    /// A read longer than `max_frame_len`.
    TooLong,
    /// A read whose terminator never came.
    Incomplete,
    /// A HID input report that does not fit the device's report descriptor.
    BadReport,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Noise => "noise",
            DropReason::TooLong => "too_long",
            DropReason::Incomplete => "incomplete",
            DropReason::BadReport => "bad_report",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the framer makes of the bytes.
#[derive(Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// One complete read, without its terminator.
    Frame(Vec<u8>),
    /// Bytes thrown away, reported once per run of them.
    Dropped { len: usize, reason: DropReason },
}

/// Shows the length of a frame only: its bytes may be a card number.
impl fmt::Debug for FrameEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameEvent::Frame(bytes) => write!(f, "Frame(<{} bytes>)", bytes.len()),
            FrameEvent::Dropped { len, reason } => f
                .debug_struct("Dropped")
                .field("len", len)
                .field("reason", reason)
                .finish(),
        }
    }
}

/// The framing state machine: feed it bytes with [`Framer::push`] and call [`Framer::tick`]
/// regularly, so that idle timeouts fire when no bytes come.
#[derive(Clone, Debug)]
pub struct Framer {
    config: FramingConfig,
    /// The read being collected; never starts with a noise or separator byte.
    buf: Vec<u8>,
    /// While skipping the rest of an oversize read: how many bytes of it were dropped.
    overflow: Option<usize>,
    /// Noise bytes seen since the last read, not yet reported.
    noise: usize,
    /// When the last byte came, for the idle rules.
    last_byte_ms: Option<u64>,
}

impl Framer {
    pub fn new(config: FramingConfig) -> Framer {
        Framer {
            config,
            buf: Vec::new(),
            overflow: None,
            noise: 0,
            last_byte_ms: None,
        }
    }

    pub fn config(&self) -> &FramingConfig {
        &self.config
    }

    /// Bytes that arrived at `now_ms`. Reads may be split across calls in any way.
    pub fn push(&mut self, bytes: &[u8], now_ms: u64) -> Vec<FrameEvent> {
        let mut out = Vec::new();
        // The pause before these bytes may already have ended (or expired) what was pending.
        self.expire(now_ms, &mut out);
        for &byte in bytes {
            self.accept(byte, &mut out);
        }
        if !bytes.is_empty() {
            self.last_byte_ms = Some(now_ms);
        }
        out
    }

    /// The idle rules at `now_ms`: ends a read in idle-gap mode, reports leftover noise, drops a
    /// read whose terminator did not come.
    pub fn tick(&mut self, now_ms: u64) -> Vec<FrameEvent> {
        let mut out = Vec::new();
        self.expire(now_ms, &mut out);
        out
    }

    /// Forgets everything pending, e.g. when the device went away mid-read; reports what was
    /// dropped. In idle-gap mode a pending read is dropped too: it may have been cut short.
    pub fn reset(&mut self) -> Vec<FrameEvent> {
        let mut out = Vec::new();
        self.drop_pending(&mut out);
        out
    }

    /// Reports and forgets noise, an oversize read and a partial read.
    fn drop_pending(&mut self, out: &mut Vec<FrameEvent>) {
        self.flush_noise(out);
        if let Some(len) = self.overflow.take() {
            out.push(FrameEvent::Dropped {
                len,
                reason: DropReason::TooLong,
            });
        }
        if !self.buf.is_empty() {
            out.push(FrameEvent::Dropped {
                len: self.buf.len(),
                reason: DropReason::Incomplete,
            });
            self.buf.clear();
        }
        self.last_byte_ms = None;
    }

    /// Whether part of a read (or of an oversize read) is waiting for its end.
    pub fn is_mid_frame(&self) -> bool {
        !self.buf.is_empty() || self.overflow.is_some()
    }

    fn expire(&mut self, now_ms: u64, out: &mut Vec<FrameEvent>) {
        let Some(last) = self.last_byte_ms else {
            return;
        };
        let idle = now_ms.saturating_sub(last);
        if self.config.terminator == Terminator::IdleGap {
            if idle >= self.config.idle_gap_ms {
                self.flush_noise(out);
                self.finish_idle_frame(out);
                self.last_byte_ms = None;
            }
            return;
        }
        if idle >= self.config.idle_gap_ms && !self.is_mid_frame() {
            self.flush_noise(out);
        }
        if idle > self.config.incomplete_after_ms() {
            self.drop_pending(out);
        }
    }

    fn accept(&mut self, byte: u8, out: &mut Vec<FrameEvent>) {
        let is_terminator = self.is_terminator(byte);
        if let Some(dropped) = self.overflow.as_mut() {
            if is_terminator {
                out.push(FrameEvent::Dropped {
                    len: *dropped,
                    reason: DropReason::TooLong,
                });
                self.overflow = None;
            } else {
                *dropped += 1;
            }
            return;
        }
        if self.buf.is_empty() {
            // A terminator alone is an empty read, and CR/LF/STX between reads are the rest of
            // the previous suffix or the next prefix: none of them is worth a report.
            if is_terminator || self.is_separator(byte) {
                return;
            }
            if is_noise(byte) {
                self.noise += 1;
                return;
            }
            self.flush_noise(out);
        }
        if is_terminator {
            let mut frame = std::mem::take(&mut self.buf);
            if matches!(self.config.terminator, Terminator::Lf | Terminator::CrLf) && frame.last() == Some(&b'\r') {
                frame.pop();
            }
            if !frame.is_empty() {
                out.push(FrameEvent::Frame(frame));
            }
            return;
        }
        if self.buf.len() >= self.config.max_frame_len {
            self.overflow = Some(self.buf.len() + 1);
            self.buf = Vec::new();
            return;
        }
        self.buf.push(byte);
    }

    /// Ends the read collected so far (idle-gap mode only).
    fn finish_idle_frame(&mut self, out: &mut Vec<FrameEvent>) {
        if let Some(len) = self.overflow.take() {
            out.push(FrameEvent::Dropped {
                len,
                reason: DropReason::TooLong,
            });
        }
        let mut frame = std::mem::take(&mut self.buf);
        // A device left in idle-gap mode may still send a suffix; the read never ends in one.
        while matches!(frame.last(), Some(b'\r' | b'\n')) {
            frame.pop();
        }
        if !frame.is_empty() {
            out.push(FrameEvent::Frame(frame));
        }
    }

    fn flush_noise(&mut self, out: &mut Vec<FrameEvent>) {
        if self.noise > 0 {
            out.push(FrameEvent::Dropped {
                len: self.noise,
                reason: DropReason::Noise,
            });
            self.noise = 0;
        }
    }

    fn is_terminator(&self, byte: u8) -> bool {
        match self.config.terminator {
            Terminator::Cr => byte == b'\r',
            Terminator::Lf | Terminator::CrLf => byte == b'\n',
            Terminator::Etx => byte == 0x03,
            Terminator::IdleGap => false,
        }
    }

    /// Bytes skipped silently before a read.
    fn is_separator(&self, byte: u8) -> bool {
        byte == b'\r' || byte == b'\n' || (byte == 0x02 && self.config.terminator == Terminator::Etx)
    }
}

/// Bytes that cannot start a read: controls, DEL, and bytes that never begin a UTF-8 character
/// (continuations, overlong leads, 0xF5..=0xFF such as the 0xFF of a floating line).
fn is_noise(byte: u8) -> bool {
    byte < 0x20 || byte == 0x7F || (0x80..=0xC1).contains(&byte) || byte >= 0xF5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer(terminator: Terminator) -> Framer {
        Framer::new(FramingConfig {
            terminator,
            ..FramingConfig::default()
        })
    }

    fn frame(bytes: &[u8]) -> FrameEvent {
        FrameEvent::Frame(bytes.to_vec())
    }

    fn dropped(len: usize, reason: DropReason) -> FrameEvent {
        FrameEvent::Dropped { len, reason }
    }

    #[test]
    fn each_terminator_ends_a_read() {
        let cases: [(Terminator, &[u8]); 4] = [
            (Terminator::Cr, b"ABC123\rXYZ\r"),
            (Terminator::Lf, b"ABC123\nXYZ\n"),
            (Terminator::CrLf, b"ABC123\r\nXYZ\r\n"),
            (Terminator::Etx, b"\x02ABC123\x03\x02XYZ\x03"),
        ];
        for (terminator, input) in cases {
            let mut f = framer(terminator);
            assert_eq!(
                f.push(input, 0),
                vec![frame(b"ABC123"), frame(b"XYZ")],
                "{terminator:?}"
            );
            assert!(!f.is_mid_frame());
            assert_eq!(f.tick(100_000), vec![], "{terminator:?}");
        }
    }

    #[test]
    fn cr_lf_pairs_make_no_empty_reads_with_cr_or_lf() {
        let mut f = framer(Terminator::Cr);
        assert_eq!(f.push(b"ONE\r", 0), vec![frame(b"ONE")]);
        // The LF of the pair arrives in the next read.
        assert_eq!(f.push(b"\nTWO\r\n", 1), vec![frame(b"TWO")]);
        assert_eq!(f.tick(10_000), vec![]);

        let mut f = framer(Terminator::Lf);
        assert_eq!(f.push(b"ONE\r\nTWO\r", 0), vec![frame(b"ONE")]);
        assert_eq!(f.push(b"\n", 1), vec![frame(b"TWO")]);
    }

    #[test]
    fn empty_reads_are_ignored() {
        let mut f = framer(Terminator::Cr);
        assert_eq!(f.push(b"\r\r\r\n\r", 0), vec![]);
        let mut f = framer(Terminator::Etx);
        assert_eq!(f.push(b"\x03\x02\x03", 0), vec![]);
        assert_eq!(f.tick(100_000), vec![]);
    }

    #[test]
    fn split_reads_are_joined() {
        let mut f = framer(Terminator::CrLf);
        assert_eq!(f.push(b"GMB-", 0), vec![]);
        assert_eq!(f.push(b"0000", 500), vec![]);
        assert_eq!(f.push(b"1234\r", 1_000), vec![]);
        assert_eq!(f.push(b"\n", 1_500), vec![frame(b"GMB-00001234")]);
    }

    #[test]
    fn leading_noise_is_dropped_with_a_count() {
        let mut f = framer(Terminator::Cr);
        assert_eq!(
            f.push(b"\x00\xff\x00\x1bCODE\x00X\r", 0),
            // Only leading noise is noise: inside a read the bytes are the parser's to judge.
            vec![dropped(4, DropReason::Noise), frame(b"CODE\x00X")]
        );
    }

    #[test]
    fn noise_alone_is_reported_after_the_idle_gap() {
        let mut f = framer(Terminator::Cr);
        assert_eq!(f.push(&[0xFF; 7], 0), vec![]);
        assert_eq!(f.tick(50), vec![]);
        assert_eq!(f.tick(100), vec![dropped(7, DropReason::Noise)]);
        assert_eq!(f.tick(100_000), vec![]);
    }

    #[test]
    fn utf8_reads_are_not_noise() {
        let mut f = framer(Terminator::Cr);
        let text = "Ёлка-7\r".as_bytes();
        assert_eq!(f.push(text, 0), vec![frame("Ёлка-7".as_bytes())]);
    }

    #[test]
    fn oversize_reads_are_dropped_whole_and_reported_once() {
        let mut f = Framer::new(FramingConfig {
            max_frame_len: 8,
            ..FramingConfig::default()
        });
        assert_eq!(f.push(b"AAAAAAAA", 0), vec![]);
        assert_eq!(f.push(b"AAAA", 1), vec![]);
        assert!(f.is_mid_frame());
        assert_eq!(
            f.push(b"AAAA\rGOOD\r", 2),
            vec![dropped(16, DropReason::TooLong), frame(b"GOOD")]
        );
        // Exactly the maximum still passes.
        assert_eq!(f.push(b"12345678\r", 3), vec![frame(b"12345678")]);
    }

    #[test]
    fn a_ten_thousand_byte_line_is_dropped_and_the_next_read_arrives() {
        let mut f = framer(Terminator::Cr);
        let mut input = vec![b'7'; 10_000];
        input.extend_from_slice(b"\rCARD0001\r");
        let mut events = Vec::new();
        for (i, chunk) in input.chunks(64).enumerate() {
            events.extend(f.push(chunk, i as u64));
        }
        assert_eq!(events, vec![dropped(10_000, DropReason::TooLong), frame(b"CARD0001")]);
    }

    #[test]
    fn a_partial_read_expires_as_incomplete() {
        let mut f = framer(Terminator::Cr);
        assert_eq!(f.push(b"HALF", 1_000), vec![]);
        // 10 × 100 ms is below the floor of 2 s.
        assert_eq!(f.tick(3_000), vec![]);
        assert_eq!(f.tick(3_001), vec![dropped(4, DropReason::Incomplete)]);
        assert_eq!(f.tick(9_000), vec![]);
        assert_eq!(f.push(b"NEXT\r", 9_001), vec![frame(b"NEXT")]);

        // A long gap: the floor does not apply.
        let mut f = Framer::new(FramingConfig {
            idle_gap_ms: 500,
            ..FramingConfig::default()
        });
        assert_eq!(f.push(b"HALF", 0), vec![]);
        assert_eq!(f.tick(5_000), vec![]);
        // The late rest of the read comes after the expiry: the stale part is reported first.
        assert_eq!(
            f.push(b"REST\r", 5_001),
            vec![dropped(4, DropReason::Incomplete), frame(b"REST")]
        );
    }

    #[test]
    fn idle_gap_ends_a_read() {
        let mut f = framer(Terminator::IdleGap);
        assert_eq!(f.push(b"ABC", 0), vec![]);
        assert_eq!(f.push(b"DEF", 60), vec![]);
        assert_eq!(f.tick(159), vec![]);
        assert_eq!(f.tick(160), vec![frame(b"ABCDEF")]);
        assert_eq!(f.tick(1_000), vec![]);
        // A read that follows after the gap, before any tick, ends the previous one first.
        assert_eq!(f.push(b"ONE\r\n", 2_000), vec![]);
        assert_eq!(f.push(b"TWO", 2_100), vec![frame(b"ONE")]);
        assert_eq!(f.tick(2_200), vec![frame(b"TWO")]);
    }

    #[test]
    fn idle_gap_mode_drops_noise_and_oversize_reads() {
        let mut f = Framer::new(FramingConfig {
            terminator: Terminator::IdleGap,
            idle_gap_ms: 100,
            max_frame_len: 4,
        });
        assert_eq!(f.push(b"\x00\x00OK", 0), vec![dropped(2, DropReason::Noise)]);
        assert_eq!(f.tick(100), vec![frame(b"OK")]);
        assert_eq!(f.push(b"TOOLONG", 200), vec![]);
        assert_eq!(f.tick(300), vec![dropped(7, DropReason::TooLong)]);
        assert_eq!(f.push(b"\xff", 400), vec![]);
        assert_eq!(f.tick(500), vec![dropped(1, DropReason::Noise)]);
    }

    #[test]
    fn reset_reports_what_was_pending() {
        let mut f = framer(Terminator::Cr);
        assert_eq!(f.push(b"\x00PART", 0), vec![dropped(1, DropReason::Noise)]);
        assert_eq!(f.reset(), vec![dropped(4, DropReason::Incomplete)]);
        assert_eq!(f.reset(), vec![]);
        assert_eq!(f.push(b"WHOLE\r", 1), vec![frame(b"WHOLE")]);
    }

    #[test]
    fn debug_never_shows_the_bytes() {
        let shown = format!("{:?}", frame(b"4276380012345678"));
        assert!(!shown.contains("0012345"), "{shown}");
        assert!(shown.contains("16 bytes"));
    }

    #[test]
    fn config_uses_snake_case_and_defaults() {
        let config: FramingConfig = serde_json::from_str(r#"{"terminator":"cr_lf"}"#).unwrap();
        assert_eq!(config.terminator, Terminator::CrLf);
        assert_eq!(config.max_frame_len, 1024);
        let json = serde_json::to_string(&Terminator::IdleGap).unwrap();
        assert_eq!(json, r#""idle_gap""#);
        assert_eq!(serde_json::to_string(&DropReason::TooLong).unwrap(), r#""too_long""#);
    }

    /// A tiny xorshift PRNG: deterministic, no dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A random stream of reads, with noise before some, in the device's framing.
    fn random_stream(rng: &mut XorShift, terminator: Terminator) -> (Vec<Vec<u8>>, Vec<FrameEvent>) {
        const NOISE: [u8; 6] = [0x00, 0xFF, 0x07, 0x1B, 0x80, 0xFE];
        let mut reads = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..(1 + rng.below(40)) {
            let mut wire = Vec::new();
            if rng.below(4) == 0 {
                let n = 1 + rng.below(5);
                wire.extend((0..n).map(|_| NOISE[rng.below(NOISE.len())]));
                expected.push(dropped(n, DropReason::Noise));
            }
            let body: Vec<u8> = (0..1 + rng.below(80)).map(|_| 0x21 + rng.below(94) as u8).collect();
            expected.push(frame(&body));
            if terminator == Terminator::Etx && rng.below(2) == 0 {
                wire.push(0x02);
            }
            wire.extend_from_slice(&body);
            let suffix: &[u8] = match (terminator, rng.below(2)) {
                (Terminator::Cr, 0) => b"\r",
                (Terminator::Lf, 0) => b"\n",
                (Terminator::Cr | Terminator::Lf | Terminator::CrLf, _) => b"\r\n",
                (Terminator::Etx, _) => b"\x03",
                (Terminator::IdleGap, _) => b"",
            };
            wire.extend_from_slice(suffix);
            reads.push(wire);
        }
        (reads, expected)
    }

    /// Noise split by a pause is reported in parts; the total is what the stream decides.
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

    #[test]
    fn random_splits_give_the_same_reads() {
        for seed in 1..=300u64 {
            let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for terminator in [Terminator::Cr, Terminator::Lf, Terminator::CrLf, Terminator::Etx] {
                let (reads, expected) = random_stream(&mut rng, terminator);
                let stream = reads.concat();
                let mut f = framer(terminator);
                let mut events = Vec::new();
                let (mut at, mut now) = (0, 0u64);
                while at < stream.len() {
                    let end = (at + 1 + rng.below(17)).min(stream.len());
                    // Pauses (up to 1998 ms between bytes) within the incomplete limit: a real
                    // terminator ignores them.
                    now += rng.below(1_000) as u64;
                    events.extend(f.push(&stream[at..end], now));
                    now += rng.below(1_000) as u64;
                    events.extend(f.tick(now));
                    at = end;
                }
                events.extend(f.tick(now + 100_000));
                assert_eq!(merge_noise(events), expected, "seed {seed}, {terminator:?}");
            }

            // Idle-gap mode: chunks of one read come closer than the gap, reads further apart.
            let (reads, expected) = random_stream(&mut rng, Terminator::IdleGap);
            let mut f = framer(Terminator::IdleGap);
            let mut events = Vec::new();
            let mut now = 0u64;
            for read in reads {
                let mut at = 0;
                while at < read.len() {
                    let end = (at + 1 + rng.below(17)).min(read.len());
                    now += rng.below(100) as u64;
                    events.extend(f.push(&read[at..end], now));
                    at = end;
                }
                now += 100 + rng.below(300) as u64;
                if rng.below(2) == 0 {
                    events.extend(f.tick(now));
                }
            }
            events.extend(f.tick(now + 100_000));
            assert_eq!(events, expected, "seed {seed}, IdleGap");
        }
    }
}
