//! Inert WASI stand-ins for components written in languages whose runtime imports WASI.
//!
//! A Rust plug-in built with wit-bindgen imports only `voice:policy/log`. An interpreter
//! compiled to a component (componentize-py's CPython, for example) also imports
//! `wasi:cli`, `wasi:clocks`, `wasi:random`, `wasi:filesystem` and `wasi:io` while it starts, even
//! when the plug-in never uses them. Such components get stand-ins that grant nothing:
//!
//! - environment and arguments are empty (the host's variables, keys included, are never seen);
//! - no preopened directories, so no file can be opened; stdin is empty;
//! - stdout and stderr go to the host log, tagged with the plug-in, bounded per call;
//! - the wall clock reads the Unix epoch and the monotonic clock reads zero, and randomness is
//!   a fixed sequence: a plug-in's answer depends only on its inputs, and it gets no timer to
//!   measure the host with;
//! - sleeping (`subscribe-duration`, `subscribe-instant`) traps: a blocked host call cannot be
//!   interrupted by the call deadline, so it is not offered;
//! - sockets exist as types only: no address, name lookup or protocol is permitted.
//!
//! Components that import no WASI interface (every Rust plug-in) are linked without any of this
//! and pay nothing for it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream, WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings as p2_nonblocking;
use wasmtime_wasi::p2::bindings::sync as p2;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::random::WasiRandom;
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};
use wasmtime_wasi::{
    Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView,
};

use super::bindings::HostState;

/// Longest line of guest output kept; longer lines are cut.
const MAX_LINE_BYTES: usize = 1024;
/// Output lines logged per call (stdout and stderr together).
const MAX_LINES_PER_CALL: u32 = 32;
/// Live WASI resources (streams, pollables, descriptors) one store may hold. CPython's start-up
/// holds a handful; reaching the cap makes the guest's call fail, which ends that call only.
pub(crate) const MAX_RESOURCES: usize = 1024;
/// Bytes the guest may hand over per write; it loops for more.
const WRITE_PERMIT: usize = 4096;

/// Interfaces [`add_to_linker`] provides (any `0.2.x` release of them).
const PROVIDED: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/exit",
    "wasi:cli/environment",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/ip-name-lookup",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/tcp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/udp",
];

/// Whether import `name` (e.g. `wasi:cli/environment@0.2.9`) is one of the stand-ins.
pub(crate) fn provides(name: &str) -> bool {
    match name.split_once('@') {
        Some((interface, version)) => version.starts_with("0.2.") && PROVIDED.contains(&interface),
        None => false,
    }
}

/// Links the stand-ins into `linker`. Imports left out (sockets, and anything newer) are linked
/// to functions that trap, like any other import the host does not provide.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let l = linker;
    p2::io::error::add_to_linker::<HostState, HasIo>(l, |s| s.ctx().table)?;
    p2::io::poll::add_to_linker::<HostState, HasIo>(l, |s| s.ctx().table)?;
    p2::io::streams::add_to_linker::<HostState, HasIo>(l, |s| s.ctx().table)?;
    p2::clocks::wall_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    p2::clocks::monotonic_clock::add_to_linker::<HostState, WasiClocks>(l, HostState::clocks)?;
    p2::filesystem::types::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    p2::filesystem::preopens::add_to_linker::<HostState, WasiFilesystem>(l, HostState::filesystem)?;
    p2::random::random::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    p2::random::insecure::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    p2::random::insecure_seed::add_to_linker::<HostState, WasiRandom>(l, |s| s.ctx().ctx.random())?;
    p2::cli::exit::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::environment::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::terminal_input::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::terminal_output::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    p2::cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(l, HostState::cli)?;
    // Sockets are linked so their types line up with `wasi:io`, but the context permits no
    // address, lookup or protocol: every attempt fails with `access-denied`.
    let network = p2_nonblocking::sockets::network::LinkOptions::default();
    p2_nonblocking::sockets::network::add_to_linker::<HostState, WasiSockets>(
        l,
        &network,
        HostState::sockets,
    )?;
    p2_nonblocking::sockets::instance_network::add_to_linker::<HostState, WasiSockets>(
        l,
        HostState::sockets,
    )?;
    p2_nonblocking::sockets::ip_name_lookup::add_to_linker::<HostState, WasiSockets>(
        l,
        HostState::sockets,
    )?;
    p2_nonblocking::sockets::tcp_create_socket::add_to_linker::<HostState, WasiSockets>(
        l,
        HostState::sockets,
    )?;
    p2::sockets::tcp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    p2::sockets::udp_create_socket::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    p2::sockets::udp::add_to_linker::<HostState, WasiSockets>(l, HostState::sockets)?;
    forbid_sleeping(l)
}

/// Replaces the monotonic clock's subscriptions (the only way to block in these interfaces)
/// with functions that trap.
fn forbid_sleeping(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_new(name, |_, _, _, _| {
            Err(wasmtime::Error::msg(
                "plug-ins may not sleep or wait (wasi:clocks/monotonic-clock subscriptions)",
            ))
        })?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// The monotonic-clock interface as the linked `wasmtime-wasi` defines it; components importing
/// an older 0.2 release are matched to it by semver.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// WASI state of one store; created on first use, so stores of plug-ins without WASI imports
/// never build it.
pub(crate) struct WasiSandbox {
    ctx: WasiCtx,
    table: ResourceTable,
    /// Output lines logged in the current call; reset by [`WasiSandbox::begin_call`].
    lines: Arc<AtomicU32>,
}

impl WasiSandbox {
    pub fn new(label: Arc<str>) -> Self {
        let lines = Arc::new(AtomicU32::new(0));
        let out = |stream| GuestOutput {
            label: label.clone(),
            stream,
            lines: lines.clone(),
        };
        let ctx = WasiCtx::builder()
            .stdout(out(OutputKind::Stdout))
            .stderr(out(OutputKind::Stderr))
            .wall_clock(FrozenWallClock)
            .monotonic_clock(FrozenMonotonicClock)
            .secure_random(Deterministic::new(FIXED_RANDOM.to_vec()))
            .insecure_random(Deterministic::new(FIXED_RANDOM.to_vec()))
            .insecure_random_seed(0)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut table = ResourceTable::new();
        // wasmtime's default cap is a million handles per table; a guest that leaks handles
        // would hold that much host memory per session.
        table.set_max_capacity(MAX_RESOURCES);
        Self { ctx, table, lines }
    }

    /// Resets the per-call output budget.
    pub fn begin_call(&self) {
        self.lines.store(0, Ordering::Relaxed);
    }
}

/// The "random" bytes every instance sees.
const FIXED_RANDOM: [u8; 8] = [0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15];

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let label = self.label.clone();
        let sandbox = self
            .wasi
            .get_or_insert_with(|| Box::new(WasiSandbox::new(label)));
        WasiCtxView {
            ctx: &mut sandbox.ctx,
            table: &mut sandbox.table,
        }
    }
}

/// `HasData` marker for the `wasi:io` interfaces, whose host side needs only the resource table.
struct HasIo;

impl wasmtime::component::HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

struct FrozenWallClock;

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

struct FrozenMonotonicClock;

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

#[derive(Clone, Copy)]
enum OutputKind {
    Stdout,
    Stderr,
}

/// stdout or stderr of a guest: complete lines go to the host log.
#[derive(Clone)]
struct GuestOutput {
    label: Arc<str>,
    stream: OutputKind,
    lines: Arc<AtomicU32>,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineLogger {
            out: self.clone(),
            pending: Vec::new(),
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp3 guests use this path, and p3 is not linked.
        Box::new(tokio::io::sink())
    }
}

/// One open handle on a guest's stdout or stderr.
struct LineLogger {
    out: GuestOutput,
    pending: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self, line: &[u8]) {
        if self.out.lines.fetch_add(1, Ordering::Relaxed) >= MAX_LINES_PER_CALL {
            return;
        }
        let line = &line[..line.len().min(MAX_LINE_BYTES)];
        let text = String::from_utf8_lossy(line);
        let text = crate::logsafe::escape_control(text.trim_end());
        let plugin = &*self.out.label;
        match self.out.stream {
            OutputKind::Stdout => {
                tracing::info!(target: "plugin", plugin, stream = "stdout", "{text}")
            }
            OutputKind::Stderr => {
                tracing::warn!(target: "plugin", plugin, stream = "stderr", "{text}")
            }
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LineLogger {
    async fn ready(&mut self) {}
}

impl OutputStream for LineLogger {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.pending.extend_from_slice(&bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.emit(&line);
        }
        if self.pending.len() > MAX_LINE_BYTES {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_table_is_capped() {
        let mut sandbox = WasiSandbox::new("test@0".into());
        for _ in 0..MAX_RESOURCES {
            sandbox.table.push(0u8).expect("within the cap");
        }
        assert!(
            sandbox.table.push(0u8).is_err(),
            "one more live resource than the cap is refused"
        );
    }
}
