//! The overhead of the command runner: `run_command` of `/bin/true` beside
//! `std::process::Command::output()` and `tokio::process::Command::output()`
//! of the same program, all capturing standard output and error. The
//! runner adds a process group, the SIGTERM/SIGKILL bookkeeping, the check
//! that the group is empty after the exit, and the progress-line splitter.
//!
//! `cargo bench -p mechops-benches --bench exec`

use core::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mechops_tokio::exec::{CommandRequest, run_command};
use tokio_util::sync::CancellationToken;

const PROGRAM: &str = "/bin/true";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn spawn(c: &mut Criterion) {
    let mut group = c.benchmark_group("exec_true");
    group.bench_function("std_command_output", |b| {
        b.iter(|| {
            let out = std::process::Command::new(black_box(PROGRAM))
                .output()
                .unwrap();
            black_box(out)
        });
    });
    let rt = rt();
    group.bench_function("tokio_command_output", |b| {
        b.iter(|| {
            // `output()` spawns at once, so it is called inside the runtime.
            let out = rt
                .block_on(async {
                    tokio::process::Command::new(black_box(PROGRAM))
                        .output()
                        .await
                })
                .unwrap();
            black_box(out)
        });
    });
    let request = CommandRequest::new(PROGRAM, [""; 0], "/");
    let cancel = CancellationToken::new();
    group.bench_function("mechops_run_command", |b| {
        b.iter(|| {
            let out = rt
                .block_on(run_command(black_box(&request), &mut |_| {}, &cancel))
                .unwrap();
            assert!(out.ok);
            black_box(out)
        });
    });
    group.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
