//! A client that does not keep up with the agent's voice, over real sockets with small buffers
//! (as on a congested mobile link): the host must not buffer for it without bound. One that reads
//! slower than real time is closed with 1008; one that stops reading altogether has its
//! connection dropped. Either way the host counts it (`voice_slow_clients_total`) and frees its
//! session slot, and sessions beside it go on undisturbed.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use voice_tests::agent_client::AgentClient;
use voice_tests::fake_deepgram::DeepgramScript;
use voice_tests::fake_elevenlabs::ElevenLabsScript;
use voice_tests::fake_openai::OpenAiScript;
use voice_tests::host::CloudStack;

const LIMIT: Duration = Duration::from_secs(60);
/// About 20 s of the fake voice (60 ms a character): far more than the socket buffers hold.
const STORY: &str = "Once upon a time there was a lighthouse keeper who counted ships. \
    Every night he wrote their names in a book. One night a ship came with no name at all. \
    He rowed out to meet it and found it full of letters for him. He read them all winter long.";
/// Socket buffer size asked for on both ends (the kernel doubles it).
const SMALL_BUFFER: u32 = 4096;

/// The slow-client counter is process-wide: these tests take turns so each sees its own count.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const REPLY: &str = "It is sunny in Paris today.";

/// A host with `slots` session slots whose accepted connections have a small send buffer.
async fn stack(slots: usize) -> CloudStack {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_send_buffer_size(SMALL_BUFFER)
        .expect("SO_SNDBUF");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("bind loopback");
    let listener: TcpListener = socket.listen(16).expect("listen");
    CloudStack::start_on(
        listener,
        DeepgramScript::new(["hello there"]),
        OpenAiScript::default()
            .reply("story", STORY)
            .reply("weather", REPLY),
        ElevenLabsScript::default(),
        "",
        &[
            ("MAX_SESSIONS", &slots.to_string()),
            ("MAX_SESSIONS_PER_IP", "0"),
            ("CONNECT_RATE_PER_MIN", "0"),
            ("TEXT_TURNS_PER_MIN", "0"),
        ],
    )
    .await
}

/// A WebSocket client with a small receive buffer that has started a session and asked for the
/// story; it reads only when the test says so.
async fn story_listener(addr: SocketAddr) -> WebSocketStream<TcpStream> {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(SMALL_BUFFER)
        .expect("SO_RCVBUF");
    let tcp = socket.connect(addr).await.expect("connect");
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{addr}/agent"), tcp)
        .await
        .expect("upgrade");
    let start = json!({"type": "start", "audio": {"encoding": "pcm16", "sample_rate": 16000}});
    ws.send(Message::Text(start.to_string().into()))
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("ready in time")
            .expect("connection open")
            .expect("frame");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "ready" {
                break;
            }
        }
    }
    let turn = json!({"type": "text", "text": "tell me a story"});
    ws.send(Message::Text(turn.to_string().into()))
        .await
        .unwrap();
    ws
}

/// `voice_slow_clients_total` from `/metrics`.
async fn slow_clients(addr: SocketAddr) -> u64 {
    voice_tests::metrics::metric(addr, "voice_slow_clients_total").await
}

/// Waits until the single session slot is free again: a new session is admitted.
async fn slot_released(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        if let Ok(c) = AgentClient::connect(addr, None).await {
            c.close().await;
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow client's slot was never released"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a client read until its connection ended: audio bytes, JSON types, and the close code
/// (None when the connection ended without a close frame).
#[derive(Debug, Default)]
struct Read {
    audio: usize,
    types: Vec<String>,
    close: Option<u16>,
}

/// Reads `ws` to its end, sleeping `pause` after each frame.
async fn read_to_end(ws: &mut WebSocketStream<TcpStream>, pause: Duration) -> Read {
    let mut read = Read::default();
    loop {
        let frame = tokio::time::timeout(LIMIT, ws.next())
            .await
            .unwrap_or_else(|_| panic!("the connection never ended; read so far: {read:?}"));
        match frame {
            Some(Ok(Message::Binary(b))) => read.audio += b.len(),
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                read.types
                    .push(v["type"].as_str().unwrap_or_default().into());
            }
            Some(Ok(Message::Close(f))) => {
                read.close = f.map(|f| u16::from(f.code));
                return read;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return read,
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
}

#[tokio::test]
async fn a_client_reading_slower_than_real_time_is_closed_with_1008() {
    let _turn = SERIAL.lock().await;
    let s = stack(1).await;
    let before = slow_clients(s.host.addr).await;
    let mut ws = story_listener(s.host.addr).await;
    // One frame (20 ms of audio) every 100 ms: a fifth of real time, so the host's queue grows
    // while every single write still gets through well within its send timeout.
    let read = read_to_end(&mut ws, Duration::from_millis(100)).await;
    assert_eq!(read.close, Some(1008), "{read:?}");
    assert!(read.audio > 0, "the reply had started: {read:?}");
    assert!(
        !read.types.iter().any(|t| t == "agent_done"),
        "the reply was cut, not finished: {read:?}"
    );
    assert!(slow_clients(s.host.addr).await > before);
    slot_released(s.host.addr).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_its_slot_released() {
    let _turn = SERIAL.lock().await;
    let s = stack(1).await;
    let before = slow_clients(s.host.addr).await;
    let mut ws = story_listener(s.host.addr).await;
    // The client reads nothing from here on; the host notices on its own.
    let addr = s.host.addr;
    let deadline = tokio::time::Instant::now() + LIMIT;
    while slow_clients(addr).await == before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host never counted the client as slow"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    slot_released(addr).await;
    // Nothing could reach a client that reads nothing, a close frame neither: once it reads
    // again it finds what was in flight, then the end of the connection.
    let read = read_to_end(&mut ws, Duration::ZERO).await;
    assert_eq!(read.close, None, "{read:?}");
    assert!(!read.types.iter().any(|t| t == "agent_done"), "{read:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_among_forty_sessions_are_cut_off_and_the_others_converse_undisturbed() {
    const TALKERS: usize = 40;
    const SLOW: usize = 5;
    const STOPPED: usize = 5;
    let _turn = SERIAL.lock().await;
    let s = stack(TALKERS + SLOW + STOPPED).await;
    let addr = s.host.addr;
    let before = slow_clients(addr).await;
    let mut slow =
        futures_util::future::join_all((0..SLOW + STOPPED).map(|_| story_listener(addr))).await;
    let stopped = slow.split_off(SLOW);
    // Forty sessions take three short turns each while the slow ones fall behind.
    let pcm = json!({"encoding": "pcm16", "sample_rate": 16000});
    let talk = futures_util::future::join_all((0..TALKERS).map(|i| {
        let pcm = pcm.clone();
        async move {
            let mut c = AgentClient::start(addr, pcm, None).await;
            for n in 0..3 {
                c.send_json(json!({"type": "text", "text": format!("weather {n} for {i}")}))
                    .await;
                let done = c.expect_type("agent_done", LIMIT).await;
                assert_eq!(done["interrupted"], false, "talker {i}: {done}");
                assert_eq!(done["text"], REPLY, "talker {i}");
            }
            assert!(
                c.of_type("error").is_empty(),
                "talker {i}: {:?}",
                c.of_type("error")
            );
            assert!(c.closed.is_none(), "talker {i} was closed: {:?}", c.closed);
            c
        }
    }));
    let read_slowly = futures_util::future::join_all(
        slow.iter_mut()
            .map(|ws| read_to_end(ws, Duration::from_millis(100))),
    );
    let (talkers, reads) = tokio::join!(talk, read_slowly);
    for read in &reads {
        assert_eq!(read.close, Some(1008), "{read:?}");
        assert!(!read.types.iter().any(|t| t == "agent_done"), "{read:?}");
    }
    // The clients that read nothing are dropped too; every slow one is counted once.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while slow_clients(addr).await < before + (SLOW + STOPPED) as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every slow client was counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    voice_tests::metrics::sessions_become(addr, TALKERS as u64, LIMIT).await;
    assert_eq!(slow_clients(addr).await, before + (SLOW + STOPPED) as u64);
    drop(stopped);
    for c in talkers {
        c.close().await;
    }
    voice_tests::metrics::sessions_become(addr, 0, LIMIT).await;
}
