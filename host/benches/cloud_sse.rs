//! Decoding a streamed LLM reply: the SSE decoder over a realistic chat-completions stream cut
//! into small, oddly sized pieces (as proxies and TCP deliver it).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use voice_host::providers::cloud::sse::SseDecoder;

/// A 200-token reply as the OpenAI API streams it.
fn stream() -> Vec<u8> {
    let mut s = String::from(": keep-alive\n\n");
    for i in 0..200 {
        s.push_str(&format!(
            "data: {{\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\
             \"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_x\",\"choices\":[{{\"index\":0,\
             \"delta\":{{\"content\":\" word{i}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
        ));
    }
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn decode(c: &mut Criterion) {
    let bytes = stream();
    let sizes = [5usize, 1, 13, 3, 29, 7, 2, 17, 120, 64];
    let mut group = c.benchmark_group("cloud_sse");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("decode_200_token_reply_odd_chunks", |b| {
        b.iter(|| {
            let mut d = SseDecoder::new();
            let mut out = Vec::with_capacity(256);
            let mut rest = bytes.as_slice();
            let mut i = 0;
            while !rest.is_empty() {
                let n = sizes[i % sizes.len()].min(rest.len());
                d.push(black_box(&rest[..n]), &mut out);
                rest = &rest[n..];
                i += 1;
            }
            black_box(out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
