//! Throughput of the framing layer, next to a plain memcpy of the same bytes.
//!
//! Each group is one payload size. `frame` encodes a batch of frames with `frame::encode` into
//! a fresh buffer, hands it to a `FrameDecoder` with `push_bytes` (no copy, as a receiver
//! that reads into its own buffer does) and takes every frame out with `next_frame`, so one
//! iteration is what a sender and a receiver spend on a batch; `frame_copy` does the same but
//! `push`es a copy; batching many frames
//! per iteration makes criterion's per-iteration overhead negligible next to the per-frame
//! cost. `memcpy` copies the same payload bytes with `copy_from_slice` into a preallocated
//! buffer: the floor for any code that moves them once.
//!
//! The 64-byte group reports frames per second (its cost is per frame); the 64-KiB group
//! reports bytes per second (its cost is per byte). Multiply or divide by the payload size
//! to convert. Run with:
//!
//! ```sh
//! cargo bench --bench wire -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry_protocol::frame::{self, Decoded, FRAME_BYTES_MAX_DEFAULT, FrameDecoder};

/// One benchmark group: a payload size and how many frames one iteration handles.
struct Case {
    name: &'static str,
    payload_bytes: usize,
    frames_per_batch: usize,
    /// Report frames per second rather than bytes per second.
    per_frame: bool,
}

const CASES: [Case; 2] = [
    // 4096 × 64 B = 256 KiB per batch.
    Case { name: "64B", payload_bytes: 64, frames_per_batch: 4096, per_frame: true },
    // 16 × 64 KiB = 1 MiB per batch.
    Case { name: "64KiB", payload_bytes: 64 * 1024, frames_per_batch: 16, per_frame: false },
];

fn framing(criterion: &mut Criterion) {
    for case in &CASES {
        let batch_bytes = case.payload_bytes * case.frames_per_batch;
        // Not all zero, so nothing can take a shortcut on the contents.
        let source: Vec<u8> = (0..batch_bytes).map(|index| (index * 31 + 7) as u8).collect();
        let mut group = criterion.benchmark_group(format!("wire/{}", case.name));
        group.throughput(if case.per_frame {
            Throughput::Elements(case.frames_per_batch as u64)
        } else {
            Throughput::BytesDecimal(batch_bytes as u64)
        });

        // `frame`: encode into a buffer the receiver then owns (what a socket reader that
        // reads into a fresh buffer hands over), so the payload is copied once, as memcpy
        // copies it once. `frame_copy`: the receiver copies the bytes into its own buffer.
        let mut decoder = FrameDecoder::new(FRAME_BYTES_MAX_DEFAULT);
        let stream_bytes = batch_bytes + 4 * case.frames_per_batch;
        group.bench_function("frame", |bencher| {
            bencher.iter(|| {
                let mut stream = BytesMut::with_capacity(stream_bytes);
                for payload in source.chunks_exact(case.payload_bytes) {
                    frame::encode(black_box(payload), FRAME_BYTES_MAX_DEFAULT, &mut stream)
                        .expect("the payload is below the maximum");
                }
                decoder.push_bytes(stream.freeze());
                let mut frames_count = 0;
                while let Decoded::Frame(frame) = decoder.next_frame().expect("the stream is valid") {
                    black_box(&frame);
                    frames_count += 1;
                }
                assert_eq!(frames_count, case.frames_per_batch);
            });
        });
        let mut stream = BytesMut::with_capacity(stream_bytes);
        group.bench_function("frame_copy", |bencher| {
            bencher.iter(|| {
                stream.clear();
                for payload in source.chunks_exact(case.payload_bytes) {
                    frame::encode(black_box(payload), FRAME_BYTES_MAX_DEFAULT, &mut stream)
                        .expect("the payload is below the maximum");
                }
                decoder.push(&stream);
                let mut frames_count = 0;
                while let Decoded::Frame(frame) = decoder.next_frame().expect("the stream is valid") {
                    black_box(&frame);
                    frames_count += 1;
                }
                assert_eq!(frames_count, case.frames_per_batch);
            });
        });

        let mut target = vec![0u8; batch_bytes];
        group.bench_function("memcpy", |bencher| {
            bencher.iter(|| {
                target.copy_from_slice(black_box(&source));
                black_box(&mut target);
            });
        });
        group.finish();
    }
}

criterion_group!(benches, framing);
criterion_main!(benches);
