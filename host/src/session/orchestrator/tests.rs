//! Unit tests of the turn orchestrator: events in at chosen times, actions out.
//!
//! `harness` drives an `Orchestrator` the way the session task does (ticks at every wakeup it
//! asks for, barge-in questions answered by a policy); the other modules assert what a user of
//! the session would notice.

mod harness;

mod barge_in;
mod end_of_turn;
mod lifecycle;
mod pause;
mod preemption;
mod races;
mod replies;
mod simulation;
mod unheard_reply;
mod user_turns;
