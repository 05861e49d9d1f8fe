//! The container's seccomp filter as classic BPF, built here as data: one
//! program that denies a list of syscalls, `clone` with any namespace flag,
//! and `clone3` (whose flags sit in memory a filter cannot read: ENOSYS
//! makes libc fall back to `clone`), and allows the rest. Only `sys` loads
//! it. A foreign architecture's calls (i386 `int 0x80` on x86_64) kill the
//! process, and x32 calls fail: their numbers would slip past the list.
//!
//! One program with one pass over the numbers, instead of what a general
//! rule compiler emits (two programs, ~300 instructions for this policy),
//! because every container start pays for loading and checking it.
//!
//! An OCI bundle's own profile (`linux.seccomp`, any allow- or deny-list)
//! is compiled by [`profile`].

pub mod profile;

pub use crate::sys::process::Insn;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets in `struct seccomp_data`.
const NR: u32 = 0;
const ARCH: u32 = 4;
/// The low half of args[0] (little-endian); clone's namespace flags live there.
const ARG0_LOW: u32 = 16;

pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;

/// What the filter enforces, in the host architecture's numbers.
#[derive(Debug, Clone)]
pub struct Policy {
    /// AUDIT_ARCH_* of the only architecture allowed.
    pub arch: u32,
    /// Syscall numbers that fail with EPERM.
    pub denied: Vec<u32>,
    pub clone: u32,
    pub clone3: u32,
    /// clone flags that fail with EPERM when any is set.
    pub clone_denied_flags: u32,
    /// x86_64's x32 bit: numbers at or above it fail with ENOSYS.
    pub x32_bit: Option<u32>,
}

/// Where a jump lands: the shared return blocks at the program's end.
#[derive(Clone, Copy)]
enum To {
    Next,
    Eperm,
    Enosys,
    CloneCheck,
}

/// The program for `policy`; None if its deny list is too long for
/// BPF's 8-bit jumps (about 250 entries).
pub fn program(policy: &Policy) -> Option<Vec<Insn>> {
    // Body with symbolic jumps, then the blocks they name.
    let mut body: Vec<(u16, u32, To, To)> = vec![(LD_W_ABS, ARCH, To::Next, To::Next)];
    // Wrong architecture: skip nothing, fall into the kill below.
    body.push((JEQ_K, policy.arch, To::Next, To::Next));
    let arch_check = body.len() - 1;
    body.push((RET_K, RET_KILL_PROCESS, To::Next, To::Next));
    body.push((LD_W_ABS, NR, To::Next, To::Next));
    if let Some(bit) = policy.x32_bit {
        body.push((JGE_K, bit, To::Enosys, To::Next));
    }
    body.push((JEQ_K, policy.clone3, To::Enosys, To::Next));
    body.push((JEQ_K, policy.clone, To::CloneCheck, To::Next));
    for nr in &policy.denied {
        body.push((JEQ_K, *nr, To::Eperm, To::Next));
    }
    let allow = body.len();
    let clone_check = allow + 1;
    let eperm = clone_check + 3;
    let enosys = eperm + 1;
    let at = |to: To, pc: usize| -> Option<u8> {
        let target = match to {
            To::Next => pc + 1,
            To::Eperm => eperm,
            To::Enosys => enosys,
            To::CloneCheck => clone_check,
        };
        u8::try_from(target - pc - 1).ok()
    };
    let mut prog: Vec<Insn> = body
        .iter()
        .enumerate()
        .map(|(pc, &(code, k, t, f))| Some(Insn { code, jt: at(t, pc)?, jf: at(f, pc)?, k }))
        .collect::<Option<_>>()?;
    // Right architecture: jump over the kill.
    prog[arch_check].jt = 1;
    prog.push(Insn { code: RET_K, jt: 0, jf: 0, k: RET_ALLOW });
    prog.push(Insn { code: LD_W_ABS, jt: 0, jf: 0, k: ARG0_LOW });
    prog.push(Insn { code: JSET_K, jt: 1, jf: 0, k: policy.clone_denied_flags });
    prog.push(Insn { code: RET_K, jt: 0, jf: 0, k: RET_ALLOW });
    prog.push(Insn { code: RET_K, jt: 0, jf: 0, k: RET_ERRNO | libc::EPERM as u32 });
    prog.push(Insn { code: RET_K, jt: 0, jf: 0, k: RET_ERRNO | libc::ENOSYS as u32 });
    debug_assert_eq!((prog[clone_check].code, prog[eperm].k), (LD_W_ABS, RET_ERRNO | libc::EPERM as u32));
    Some(prog)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's evaluation of the few instructions `program` emits.
    fn run(prog: &[Insn], arch: u32, nr: u32, arg0: u64) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            pc += 1;
            let jump = |taken: bool| if taken { i.jt as usize } else { i.jf as usize };
            match i.code {
                LD_W_ABS => {
                    acc = match i.k {
                        NR => nr,
                        ARCH => arch,
                        ARG0_LOW => arg0 as u32,
                        k => panic!("load of offset {k}"),
                    }
                }
                JEQ_K => pc += jump(acc == i.k),
                JGE_K => pc += jump(acc >= i.k),
                JSET_K => pc += jump(acc & i.k != 0),
                RET_K => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    fn policy() -> Policy {
        Policy {
            arch: 0xc000_003e,
            denied: (200..250).collect(),
            clone: 56,
            clone3: 435,
            clone_denied_flags: 0x2002_0000,
            x32_bit: Some(0x4000_0000),
        }
    }

    #[test]
    fn decides_each_kind_of_call() {
        let p = policy();
        let prog = program(&p).unwrap();
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let enosys = RET_ERRNO | libc::ENOSYS as u32;
        assert_eq!(run(&prog, p.arch, 0, 0), RET_ALLOW);
        assert_eq!(run(&prog, p.arch, 199, 0), RET_ALLOW);
        for nr in [200, 222, 249] {
            assert_eq!(run(&prog, p.arch, nr, 0), eperm, "nr {nr}");
        }
        assert_eq!(run(&prog, p.arch, 250, 0), RET_ALLOW);
        assert_eq!(run(&prog, p.arch, 56, 0x11), RET_ALLOW, "plain fork-like clone");
        assert_eq!(run(&prog, p.arch, 56, 0x2000_0011), eperm, "clone with a namespace flag");
        assert_eq!(run(&prog, p.arch, 56, 0xffff_ffff_0000_0011), RET_ALLOW, "high half ignored");
        assert_eq!(run(&prog, p.arch, 435, 0), enosys);
        assert_eq!(run(&prog, p.arch, 0x4000_0000, 0), enosys, "x32");
        assert_eq!(run(&prog, 0x4000_0003, 1, 0), RET_KILL_PROCESS, "i386 on x86_64");
    }

    #[test]
    fn stays_short_and_in_jump_range() {
        let mut p = policy();
        assert_eq!(program(&p).unwrap().len(), 7 + 50 + 6);
        p.x32_bit = None;
        assert_eq!(program(&p).unwrap().len(), 6 + 50 + 6);
        p.denied = (0..240).collect();
        assert_eq!(run(&program(&p).unwrap(), p.arch, 239, 0), RET_ERRNO | libc::EPERM as u32);
        p.denied = (0..300).collect();
        assert_eq!(program(&p), None);
    }
}
