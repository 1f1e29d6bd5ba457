//! The text end-of-turn model: how likely it is that the user's sentence ends where their words
//! stop, read from the words alone.
//!
//! The audio model ([`super::TurnModel`]) hears a voice that falls or hangs; it cannot know that
//! "call my mother" said with a falling voice is going on ("and tell her I'm on my way"). A
//! language model reading the words knows how often a sentence goes on from them, as LiveKit's
//! turn detector does. Here the offline LLM's own SmolLM2 135M Instruct is read, not run: the
//! probability that the next token after the user's words is a full stop, a question or
//! exclamation mark or the end of the message, with the agent's last sentence before them. The
//! words are lower-cased without punctuation: a recogniser writes stops at pauses inside
//! sentences, and the model must judge the words, not the recogniser's guess.
//!
//! The model runs on dedicated threads (`TURN_WORDS_THREADS`, one by default), each with its own
//! context and bounded queue; a session always reads on the same one, where its prompt is
//! cached. A refused or late read leaves the policy without the probability
//! (`voice_turn_model_answers_total` counts both). A read costs about 10 ms of CPU plus about
//! 7 ms per token it evaluates, so each session reads its words ahead as they come
//! ([`WordsSession::read_ahead`]: the turn's first words, which carry the prompt's cold start,
//! then every [`READ_AHEAD_WORDS`] words, see [`worth_reading_ahead`]), and the question at a
//! pause reads only the few words since, about as fast as the audio model's run beside it.

use super::TurnModelError;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Words said since the last read ahead before the next one. A read costs about 10 ms of CPU
/// whatever it reads plus about 7 ms per token (docs/benchmarks.md), so reading at every
/// transcript would cost about twice what reading every four words does; left unread, up to
/// this many words cost the pause's question about as much as the audio model's run, which it
/// waits beside.
pub const READ_AHEAD_WORDS: usize = 4;

/// Whether `now` (agent sentence, words) is worth reading ahead, the words `read` last having
/// been: the turn's first words (their read takes the prompt's cold start, the system and agent
/// sentences, off the pause: a short answer would otherwise be read whole at its pause), then
/// [`READ_AHEAD_WORDS`] more words, or another agent sentence or turn (fewer words).
pub fn worth_reading_ahead(read: Option<&(String, String)>, now: &(String, String)) -> bool {
    let count = |s: &str| s.split_whitespace().count();
    match read {
        None => count(&now.1) > 0,
        Some((agent, words)) => {
            let (before, after) = (count(words), count(&now.1));
            agent != &now.0 || after < before || after >= before + READ_AHEAD_WORDS
        }
    }
}

/// The words and agent sentence kept in a prompt: the end of each (what decides the answer), and
/// a bound on what one question costs.
const KEPT_WORDS: usize = 40;

/// The words as the model reads them: lower case, letters, digits and apostrophes, single spaces.
pub fn normalised(words: &str) -> String {
    let kept: String = words
        .chars()
        .map(|c| match c {
            '\u{2019}' => '\'',
            c if c.is_alphanumeric() || c == '\'' => c.to_lowercase().next().unwrap_or(c),
            _ => ' ',
        })
        .collect();
    last_words(&kept)
}

/// The last [`KEPT_WORDS`] words of `text`, single-spaced.
fn last_words(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    words[words.len().saturating_sub(KEPT_WORDS)..].join(" ")
}

/// The ChatML prompt whose next token is asked about: the agent's sentence as its turn, then the
/// user's words with their message left open.
#[cfg_attr(not(feature = "local-llm"), allow(dead_code))]
pub(crate) fn prompt(agent: &str, words: &str) -> String {
    let mut prompt = String::from("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n");
    let agent = last_words(agent);
    if !agent.is_empty() {
        prompt += &format!("<|im_start|>assistant\n{agent}<|im_end|>\n");
    }
    prompt + &format!("<|im_start|>user\n{}", normalised(words))
}

#[cfg(feature = "local-llm")]
type Pool = crate::providers::local::worker::WorkerPool<super::words_reader::WordsReader>;
/// Without llama.cpp there is no model to hold.
#[cfg(not(feature = "local-llm"))]
type Pool = std::convert::Infallible;

/// SmolLM2 read as a text end-of-turn model, loaded once and shared: a cheap handle to its
/// threads. The threads end when the last handle is dropped.
#[derive(Clone)]
pub struct WordsModel {
    /// One per thread, each with its own context; a session reads on one, always the same
    /// (its cached prompt is in that context).
    lanes: Arc<[Lane]>,
    sessions: Arc<AtomicU64>,
}

/// One thread of the model, its context and its queue.
struct Lane {
    pool: Pool,
    /// Reads ahead queued and not yet run: at most [`MAX_READS_AHEAD`], so that they never fill
    /// the queue the questions need.
    reads_ahead: Arc<AtomicUsize>,
}

/// Most reads ahead waiting in a thread's queue (of `4 * SLOTS`) at once; more are skipped.
const MAX_READS_AHEAD: usize = 8;

/// Most threads `TURN_WORDS_THREADS` may ask for.
pub const MAX_THREADS: usize = 16;

impl std::fmt::Debug for WordsModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WordsModel(SmolLM2 135M Instruct)")
    }
}

impl WordsModel {
    /// Loads SmolLM2 from the models directory on its own thread; a one-line error naming the
    /// file and the install command when it is missing.
    pub fn load(models_dir: &Path) -> Result<WordsModel, TurnModelError> {
        Self::load_on(models_dir, 1)
    }

    /// As [`Self::load`], on `threads` threads (1..=[`MAX_THREADS`]), each with its own context
    /// and cache (about 95 MB each): sessions are spread across them, so that the model serves
    /// about `threads` times as many sessions at once.
    pub fn load_on(models_dir: &Path, threads: usize) -> Result<WordsModel, TurnModelError> {
        use crate::providers::local::models::SMOLLM2_FILE;
        let path = models_dir.join(SMOLLM2_FILE.relative_path);
        if !path.is_file() {
            return Err(TurnModelError::NotInstalled(
                crate::providers::local::missing_message(
                    "text end-of-turn model (SmolLM2 135M Instruct)",
                    &path,
                    models_dir,
                ),
            ));
        }
        Self::spawn(&path, threads.clamp(1, MAX_THREADS))
    }

    #[cfg(feature = "local-llm")]
    fn spawn(path: &Path, threads: usize) -> Result<WordsModel, TurnModelError> {
        use super::words_reader::{WordsReader, SLOTS};
        use crate::providers::local::worker::WorkerPool;
        let started = std::time::Instant::now();
        // Load on the caller's thread, so a broken file is an error here, not a log line.
        let model = WordsReader::load_model(path)?;
        let mut lanes = Vec::with_capacity(threads);
        for i in 0..threads {
            let reader = WordsReader::new(model, path)?;
            let reader = std::sync::Mutex::new(Some(reader));
            let pool = WorkerPool::spawn(&format!("turn-words-{i}"), 1, 4 * SLOTS, move || {
                reader
                    .lock()
                    .ok()
                    .and_then(|mut r| r.take())
                    .ok_or_else(|| "the text end-of-turn model was taken".to_string())
            })
            .map_err(|e| TurnModelError::Inference(format!("cannot start its thread: {e}")))?;
            lanes.push(Lane {
                pool,
                reads_ahead: Arc::new(AtomicUsize::new(0)),
            });
        }
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            threads,
            "text end-of-turn model loaded (SmolLM2 135M Instruct)"
        );
        Ok(WordsModel {
            lanes: lanes.into(),
            sessions: Arc::new(AtomicU64::new(0)),
        })
    }

    #[cfg(not(feature = "local-llm"))]
    fn spawn(_path: &Path, _threads: usize) -> Result<WordsModel, TurnModelError> {
        Err(TurnModelError::NotInstalled(
            "the text end-of-turn model needs a build with the `local-llm` feature".into(),
        ))
    }

    /// A session's reader: its prompts stay cached between questions; dropping its last clone
    /// frees them.
    pub fn session(&self) -> WordsSession {
        WordsSession(Arc::new(SessionReader {
            model: self.clone(),
            id: self.sessions.fetch_add(1, Ordering::Relaxed),
            latest: AtomicU64::new(0),
        }))
    }
}

/// What became of a read ahead ([`WordsSession::read_ahead`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ReadAhead {
    Queued,
    /// The model's thread had too many waiting: the next question reads these words itself,
    /// so it costs more and may come late. Counted in
    /// `voice_turn_words_reads_ahead_refused_total`, the thread's first sign of overload.
    Refused,
}

/// One session's use of the [`WordsModel`]; clones are the same session.
#[derive(Clone)]
pub struct WordsSession(Arc<SessionReader>);

struct SessionReader {
    model: WordsModel,
    id: u64,
    /// Bumped at each request: a read ahead that a newer request overtook in the queue is
    /// skipped.
    latest: AtomicU64,
}

impl WordsSession {
    /// [`Self::probability`], or [`TurnModelError::Late`] when it cannot answer within `wait`.
    pub async fn probability_within(
        &self,
        agent: &str,
        words: &str,
        wait: std::time::Duration,
    ) -> Result<f32, TurnModelError> {
        tokio::time::timeout(wait, self.probability(agent, words))
            .await
            .unwrap_or(Err(TurnModelError::Late(wait)))
    }

    /// The probability that the user's sentence ends after `words` (said after the agent's
    /// `agent` sentence). `Busy` at once when the model's queue is full.
    pub async fn probability(&self, agent: &str, words: &str) -> Result<f32, TurnModelError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0.latest.fetch_add(1, Ordering::Relaxed);
        self.submit(
            agent,
            words,
            || false,
            move |p| {
                let _ = tx.send(p);
            },
        )?;
        rx.await.map_err(|_| TurnModelError::Stopped)?
    }

    /// Reads `words` now, so that a question about them (or about more words after them)
    /// costs only what is new. Refused when the model's thread has too many waiting; skipped
    /// when its turn comes if a newer request has overtaken it.
    pub fn read_ahead(&self, agent: &str, words: &str) -> ReadAhead {
        let queued = &self.0.lane().reads_ahead;
        if queued.fetch_add(1, Ordering::Relaxed) >= MAX_READS_AHEAD {
            queued.fetch_sub(1, Ordering::Relaxed);
            return ReadAhead::Refused;
        }
        let mine = self.0.latest.fetch_add(1, Ordering::Relaxed) + 1;
        let (me, done) = (Arc::downgrade(&self.0), Arc::clone(queued));
        let stale = move || {
            done.fetch_sub(1, Ordering::Relaxed);
            me.upgrade()
                .is_none_or(|me| me.latest.load(Ordering::Relaxed) != mine)
        };
        if self.submit(agent, words, stale, drop).is_err() {
            queued.fetch_sub(1, Ordering::Relaxed);
            return ReadAhead::Refused;
        }
        ReadAhead::Queued
    }

    /// Queues a read of `words` for this session, skipped if `stale()` says so when its turn
    /// comes; `answer` gets the result of one that ran.
    #[cfg(feature = "local-llm")]
    fn submit(
        &self,
        agent: &str,
        words: &str,
        stale: impl FnOnce() -> bool + Send + 'static,
        answer: impl FnOnce(Result<f32, TurnModelError>) + Send + 'static,
    ) -> Result<(), TurnModelError> {
        let (id, agent, words) = (self.0.id, agent.to_string(), words.to_string());
        self.0
            .lane()
            .pool
            .try_submit(Box::new(move |reader| {
                if !stale() {
                    answer(reader.probability(id, &agent, &words));
                }
            }))
            .map_err(|_| TurnModelError::Busy)
    }

    #[cfg(not(feature = "local-llm"))]
    fn submit(
        &self,
        _agent: &str,
        _words: &str,
        _stale: impl FnOnce() -> bool + Send + 'static,
        _answer: impl FnOnce(Result<f32, TurnModelError>) + Send + 'static,
    ) -> Result<(), TurnModelError> {
        match self.0.lane().pool {}
    }
}

impl SessionReader {
    /// The thread this session reads on.
    fn lane(&self) -> &Lane {
        &self.model.lanes[(self.id % self.model.lanes.len() as u64) as usize]
    }
}

impl Drop for SessionReader {
    fn drop(&mut self) {
        #[cfg(feature = "local-llm")]
        {
            let id = self.id;
            // A full queue keeps the sequence until a newer session takes it over.
            let _ = self
                .lane()
                .pool
                .try_submit(Box::new(move |reader| reader.forget(id)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_words_are_read_without_the_recogniser_s_punctuation() {
        assert_eq!(
            normalised("  Book me a flight to London, please."),
            "book me a flight to london please"
        );
        assert_eq!(normalised("I'd like... um"), "i'd like um");
        assert_eq!(
            normalised("\"How do I get to Dublin?\" It’s"),
            "how do i get to dublin it's"
        );
    }

    #[test]
    fn words_are_read_ahead_a_few_at_a_time() {
        let said = |agent: &str, words: &str| (agent.to_string(), words.to_string());
        let first = said("Hi.", "I need a taxi");
        assert!(worth_reading_ahead(None, &first));
        assert!(worth_reading_ahead(None, &said("Hi.", "yes")));
        assert!(!worth_reading_ahead(None, &said("Hi.", "")));
        assert!(!worth_reading_ahead(
            Some(&first),
            &said("Hi.", "I need a taxi from the")
        ));
        assert!(worth_reading_ahead(
            Some(&first),
            &said("Hi.", "I need a taxi from the central station")
        ));
        // A revised guess of the same length is left to the next read or the question.
        assert!(!worth_reading_ahead(
            Some(&first),
            &said("Hi.", "I need the taxi")
        ));
        // A new turn: fewer words, or after another sentence of the agent's.
        assert!(worth_reading_ahead(Some(&first), &said("Hi.", "yes")));
        assert!(!worth_reading_ahead(
            Some(&said("Hi.", "yes")),
            &said("Hi.", "yes I do")
        ));
        assert!(worth_reading_ahead(
            Some(&first),
            &said("Where to?", "I need a taxi")
        ));
    }

    #[test]
    fn a_prompt_keeps_the_end_of_long_words() {
        let long: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let p = prompt(&long.join(" "), &long.join(" "));
        assert!(p.contains("assistant\nw60 w61"), "{p}");
        assert!(p.ends_with("user\nw60 w61 w62 w63 w64 w65 w66 w67 w68 w69 w70 w71 w72 w73 w74 w75 w76 w77 w78 w79 w80 w81 w82 w83 w84 w85 w86 w87 w88 w89 w90 w91 w92 w93 w94 w95 w96 w97 w98 w99"), "{p}");
        assert!(
            !prompt("", "hi").contains("<|im_start|>assistant"),
            "no agent turn before the first reply"
        );
    }
}

#[cfg(all(test, feature = "local-llm"))]
mod model_tests {
    use super::*;

    /// The installed SmolLM2, or `None` with a notice (a failure under `CI=true`).
    fn model() -> Option<WordsModel> {
        model_on(1)
    }

    /// As [`model`], reading on `threads` threads.
    fn model_on(threads: usize) -> Option<WordsModel> {
        let dir = std::env::var_os("MODELS_DIR").map_or_else(
            crate::providers::local::LocalModels::default_dir,
            std::path::PathBuf::from,
        );
        match WordsModel::load_on(&dir, threads) {
            Ok(model) => Some(model),
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED (text end-of-turn model missing): {e}");
                None
            }
            Err(e) => panic!("text end-of-turn model missing in CI: {e}"),
        }
    }

    const AGENT: &str = "How can I help?";

    /// A burst of reads ahead past what a thread may hold waiting is refused rather than queued
    /// in front of the questions, which are still answered.
    #[tokio::test]
    async fn reads_ahead_past_the_thread_s_limit_are_refused() {
        let Some(model) = model() else { return };
        let sessions: Vec<_> = (0..3 * MAX_READS_AHEAD).map(|_| model.session()).collect();
        let queued = sessions
            .iter()
            .filter(|s| s.read_ahead(AGENT, "i would like to book a table") == ReadAhead::Queued)
            .count();
        // Each read takes milliseconds: the thread starts at most the first during the burst,
        // which leaves room for one more.
        assert!(
            (MAX_READS_AHEAD..=MAX_READS_AHEAD + 1).contains(&queued),
            "{queued} of {} queued",
            sessions.len()
        );
        assert!(sessions[0].probability(AGENT, "yes").await.is_ok());
    }

    #[tokio::test]
    async fn words_that_lead_on_read_as_unlikely_ends() {
        let Some(model) = model() else { return };
        let session = model.session();
        for unfinished in ["can you tell me", "I'd like to order", "my name is"] {
            let p = session.probability(AGENT, unfinished).await.unwrap();
            assert!(p < 0.02, "{unfinished}: {p}");
        }
        for finished in [
            "What's the weather in Paris?",
            "yes",
            "Book me a flight to London.",
        ] {
            let p = session.probability(AGENT, finished).await.unwrap();
            assert!(p > 0.05, "{finished}: {p}");
        }
    }

    #[tokio::test]
    async fn reading_ahead_and_sharing_the_model_change_no_answer() {
        let Some(model) = model() else { return };
        reading_ahead_changes_no_answer(&model).await;
    }

    /// As above with two threads, each with its own context: sessions alternate between them.
    #[tokio::test]
    async fn two_threads_give_the_answers_one_gives() {
        let (Some(one), Some(two)) = (model(), model_on(2)) else {
            return;
        };
        assert_eq!(two.lanes.len(), 2);
        for said in ["can you tell me", "book me a flight to london"] {
            let a = one.session().probability(AGENT, said).await.unwrap();
            for _ in 0..2 {
                let b = two.session().probability(AGENT, said).await.unwrap();
                assert!((a - b).abs() <= 1e-3 * a.max(1e-3), "{said}: {a} vs {b}");
            }
        }
        reading_ahead_changes_no_answer(&two).await;
    }

    /// More sessions than a context keeps cached read their words ahead, interleaved and
    /// revised: every answer is the one a fresh session gets.
    async fn reading_ahead_changes_no_answer(model: &WordsModel) {
        // One more session than the model's contexts keep cached.
        let sessions_n = model.lanes.len() * super::super::words_reader::SLOTS + 1;
        let said = |i: usize| format!("please book table {i} for two at seven");
        // Cold answers, one fresh session each.
        let mut cold = Vec::new();
        for i in 0..sessions_n {
            cold.push(model.session().probability(AGENT, &said(i)).await.unwrap());
        }
        // More sessions than the model keeps cached, each reading its words as they come,
        // interleaved, and the recogniser revising them: every answer is the cold one.
        let sessions: Vec<WordsSession> = (0..sessions_n).map(|_| model.session()).collect();
        let words: Vec<Vec<String>> = (0..sessions_n)
            .map(|i| said(i).split(' ').map(String::from).collect())
            .collect();
        for n in [2, 5] {
            for (s, w) in sessions.iter().zip(&words) {
                s.probability(AGENT, &w[..n].join(" ")).await.unwrap();
            }
        }
        // The recogniser's last guess was wrong: what the cache holds past the common part
        // must go. Reads ahead (which a newer one may skip) go the same way.
        for (s, w) in sessions.iter().zip(&words) {
            s.probability(AGENT, "please book tables for two at eleven")
                .await
                .unwrap();
            // Queued or refused, the answers below must be the cold ones.
            let _ = s.read_ahead(AGENT, &w[..3].join(" "));
            let _ = s.read_ahead(AGENT, "please cook");
        }
        for (i, s) in sessions.iter().enumerate() {
            let p = s.probability(AGENT, &said(i)).await.unwrap();
            assert!(
                (p - cold[i]).abs() <= 1e-3 * cold[i].max(1e-3),
                "{i}: {p} vs {}",
                cold[i]
            );
            // Asked again, the answer is kept.
            assert_eq!(s.probability(AGENT, &said(i)).await.unwrap(), p);
        }
    }
}
