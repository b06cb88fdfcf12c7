//! After `fork`, parent and child must not hand out the same UUIDs, even
//! though the child starts with a copy of the parent's buffered entropy, its
//! fast generator state and its v7 generator state.
#![cfg(unix)]

use mechops_core::uuid::{Uuid, Version};
use mechops_std::entropy::fork_generation;
use mechops_std::uuid::{generate_fast_uuid, generate_secure_uuid, generate_v7};

const N: usize = 64;

/// What the child sends back: its fork generation, then N secure, N fast and
/// N v7 UUIDs.
const MESSAGE_LEN: usize = 8 + 3 * N * 16;

fn read_exact(fd: i32, buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: `buf[done..]` is a valid, writable region of exactly the
        // length passed; `fd` is the open read end of our pipe.
        let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done) };
        assert!(n > 0, "pipe closed after {done} of {} bytes", buf.len());
        done += n as usize;
    }
}

/// The child's side: only stack memory, raw writes and `_exit`, so nothing
/// depends on locks another thread might have held at the fork.
fn child(write_fd: i32) -> ! {
    let mut message = [0u8; MESSAGE_LEN];
    message[..8].copy_from_slice(&fork_generation().to_le_bytes());
    for i in 0..N {
        let at = 8 + 16 * i;
        message[at..at + 16].copy_from_slice(generate_secure_uuid().as_bytes());
        let at = 8 + 16 * (N + i);
        message[at..at + 16].copy_from_slice(generate_fast_uuid().as_bytes());
        let at = 8 + 16 * (2 * N + i);
        message[at..at + 16].copy_from_slice(generate_v7().as_bytes());
    }
    let mut done = 0;
    while done < MESSAGE_LEN {
        // SAFETY: `message[done..]` is valid for reads of the given length;
        // `write_fd` is the open write end of the pipe.
        let n = unsafe {
            libc::write(
                write_fd,
                message[done..].as_ptr().cast(),
                MESSAGE_LEN - done,
            )
        };
        if n <= 0 {
            // SAFETY: `_exit` ends the child without unwinding or running the
            // parent's atexit handlers; always sound to call.
            unsafe { libc::_exit(3) };
        }
        done += n as usize;
    }
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

#[test]
fn parent_and_child_generate_different_uuids() {
    // Leave both generators mid-stream: the buffer holds unused bytes and
    // the fast state is seeded, which is what a fork would copy.
    let before: Vec<Uuid> = (0..5)
        .flat_map(|_| [generate_secure_uuid(), generate_fast_uuid(), generate_v7()])
        .collect();
    assert_eq!(before.len(), 15);
    let parent_generation = fork_generation();

    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for `pipe` to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let [read_fd, write_fd] = fds;

    // SAFETY: the child runs only `child`, which avoids locks and allocation
    // and leaves through `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        child(write_fd);
    }
    // SAFETY: closing our copy of the write end, which we own.
    unsafe { libc::close(write_fd) };

    let parent_secure: Vec<Uuid> = (0..N).map(|_| generate_secure_uuid()).collect();
    let parent_fast: Vec<Uuid> = (0..N).map(|_| generate_fast_uuid()).collect();
    let parent_v7: Vec<Uuid> = (0..N).map(|_| generate_v7()).collect();

    let mut message = vec![0u8; MESSAGE_LEN];
    read_exact(read_fd, &mut message);
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    // SAFETY: closing the read end, which we own.
    unsafe { libc::close(read_fd) };

    let child_generation = u64::from_le_bytes(message[..8].try_into().unwrap());
    assert_ne!(
        child_generation, parent_generation,
        "the child saw the fork"
    );
    let child_uuids: Vec<Uuid> = message[8..]
        .chunks_exact(16)
        .map(|c| Uuid::from_bytes(c.try_into().unwrap()))
        .collect();
    let (child_secure, rest) = child_uuids.split_at(N);
    let (child_fast, child_v7) = rest.split_at(N);

    for u in child_secure
        .iter()
        .chain(child_fast)
        .chain(&parent_secure)
        .chain(&parent_fast)
    {
        assert_eq!(u.version(), Version::V4);
    }
    for u in child_v7.iter().chain(&parent_v7) {
        assert_eq!(u.version(), Version::V7);
    }
    for u in child_v7 {
        assert!(!parent_v7.contains(u), "v7 UUID {u} in both processes");
    }
    for u in child_secure {
        assert!(
            !parent_secure.contains(u),
            "secure UUID {u} in both processes"
        );
    }
    for u in child_fast {
        assert!(!parent_fast.contains(u), "fast UUID {u} in both processes");
    }
    let mut all: Vec<Uuid> = child_uuids
        .iter()
        .chain(&parent_secure)
        .chain(&parent_fast)
        .chain(&parent_v7)
        .chain(&before)
        .copied()
        .collect();
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total);
}
