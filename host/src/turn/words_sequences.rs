//! Which session each of the text model's cached sequences serves.
//!
//! A session's sequence keeps its prompt, so a read evaluates only the words since its last one
//! (a few tokens) instead of the whole prompt (about 40). Giving the least recently used
//! sequence away is the wrong rule when more sessions are speaking than there are sequences:
//! they read in turn, each takes the sequence of the one that will read next, and every read
//! is cold (four times the CPU per turn, docs/benchmarks.md), just when the model's one thread
//! is busiest. So a sequence is given away only when its session has been quiet while
//! [`IDLE_READS`] reads of others were made (between its turns); while every owner is speaking,
//! newcomers share the last sequence, the overflow, and only they read cold. Quiet is counted
//! in reads, not seconds, so that a backlog on the model's thread, which spaces every session's
//! reads further apart in time, does not make the speaking sessions look quiet.

/// Reads by other sessions after which a session that made none is quiet. A speaking session
/// reads every few words (about a second apart); one thread serves about ten sessions speaking
/// at once, each reading about twice a second, so mid-turn a session sees far fewer between two
/// of its reads, and between its turns (the agent's reply) more.
pub(crate) const IDLE_READS: u64 = 64;

#[derive(Clone, Copy)]
struct Owner {
    session: u64,
    /// The read count at its last read.
    used: u64,
}

/// The sessions owning the sequences `0..len`; the last one is the overflow.
pub(crate) struct Sequences {
    owners: Vec<Option<Owner>>,
    reads: u64,
}

/// The sequence a read goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seat {
    pub(crate) seq: usize,
    /// It served another session last: its cache must be emptied first.
    pub(crate) taken_over: bool,
}

impl Sequences {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            owners: vec![None; len.max(1)],
            reads: 0,
        }
    }

    /// The sequence for a read by `session`: its own, else a free one, else the least recently
    /// used of the quiet ones, else the overflow.
    pub(crate) fn seat(&mut self, session: u64) -> Seat {
        self.reads += 1;
        let now = self.reads;
        let owned = |o: &Option<Owner>| o.is_some_and(|o| o.session == session);
        let (seq, taken_over) = if let Some(seq) = self.owners.iter().position(owned) {
            (seq, false)
        } else if let Some(seq) = self.owners.iter().position(Option::is_none) {
            (seq, false)
        } else {
            let idle = (0..self.owners.len())
                .filter_map(|i| self.owners[i].map(|o| (i, o.used)))
                .filter(|&(_, used)| now - used > IDLE_READS)
                .min_by_key(|&(_, used)| used)
                .map(|(i, _)| i);
            (idle.unwrap_or(self.owners.len() - 1), true)
        };
        self.owners[seq] = Some(Owner { session, used: now });
        Seat { seq, taken_over }
    }

    /// `session` is gone: its sequence (returned, to empty) is free.
    pub(crate) fn forget(&mut self, session: u64) -> Option<usize> {
        let seq = self
            .owners
            .iter()
            .position(|o| o.is_some_and(|o| o.session == session))?;
        self.owners[seq] = None;
        Some(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_keeps_its_sequence_and_newcomers_take_free_ones() {
        let mut seqs = Sequences::new(3);
        let first = seqs.seat(1);
        assert!(!first.taken_over);
        let second = seqs.seat(2);
        assert_ne!(first.seq, second.seq);
        for _ in 0..IDLE_READS * 2 {
            seqs.seat(2);
        }
        assert_eq!(seqs.seat(1), first, "its own, however long after");
        assert_eq!(seqs.forget(1), Some(first.seq));
        assert_eq!(seqs.forget(1), None);
        let third = seqs.seat(3);
        assert_eq!((third.seq, third.taken_over), (first.seq, false));
    }

    #[test]
    fn while_every_owner_speaks_newcomers_share_the_overflow() {
        let mut seqs = Sequences::new(4);
        let owners: Vec<Seat> = (0..4).map(|s| seqs.seat(s)).collect();
        // Sessions 4..20 read in turn with 0..3: sixteen reads between two of an owner's, so
        // the owners of the first three sequences keep them on every read.
        for round in 0..40 {
            for s in 0..3 {
                assert_eq!(seqs.seat(s), owners[s as usize], "round {round}");
            }
            for s in 4..20 {
                let seat = seqs.seat(s);
                assert_eq!(
                    seat,
                    Seat {
                        seq: 3,
                        taken_over: true
                    },
                    "round {round}"
                );
            }
        }
    }

    #[test]
    fn a_quiet_session_s_sequence_goes_to_a_newcomer_least_recent_first() {
        let mut seqs = Sequences::new(3);
        for s in 0..3 {
            seqs.seat(s);
        }
        // Session 0 read last at read 1, session 1 at read 11; session 2 reads on.
        for _ in 0..7 {
            seqs.seat(2);
        }
        let one = seqs.seat(1);
        for _ in 0..IDLE_READS - 8 {
            seqs.seat(2);
        }
        // Session 0 has been quiet for IDLE_READS + 1 reads, session 1 for fewer.
        let zero = seqs
            .owners
            .iter()
            .position(|o| o.is_some_and(|o| o.session == 0));
        let newcomer = seqs.seat(10);
        assert_eq!(Some(newcomer.seq), zero);
        assert!(newcomer.taken_over);
        let next = seqs.seat(11);
        assert_eq!(next.seq, 2, "session 1 is not yet quiet: the overflow");
        assert_ne!(next.seq, one.seq);
        // Session 0 is back: it gets a sequence again (the overflow), cold.
        assert!(seqs.seat(0).taken_over);
        // Long after, session 1 is quiet and its sequence goes to the next newcomer.
        for _ in 0..IDLE_READS {
            seqs.seat(0);
        }
        assert_eq!(seqs.seat(12).seq, one.seq);
    }
}
