//! A `linux.seccomp` profile (an OCI bundle's, or the one the engine
//! generates for `mini run`) compiled into one classic-BPF program for
//! this machine's architecture, with the semantics runc gets from
//! libseccomp. Pure: the profile is already parsed, nothing here
//! touches the kernel; `sys::process::load_seccomp` loads it.
//!
//! What a call gets, in order:
//! - **Architecture.** The kernel reports the caller's `AUDIT_ARCH_*`. The
//!   native one (x86_64, aarch64) runs the rules below; it is always
//!   compiled, as libseccomp always adds it. The compat architecture (i386
//!   on x86_64, arm on aarch64) and x86_64's x32 ABI (native arch, numbers
//!   with bit 30 set) get the **default action** when the profile lists
//!   them and the default action refuses the call; otherwise they get
//!   SECCOMP_RET_KILL_PROCESS, libseccomp's "bad arch" action. The rules are
//!   only resolved for the native table, so a listed compat arch under a
//!   permissive default (ALLOW, LOG, TRACE) would slip past every deny rule:
//!   it is treated as unlisted unless the profile has no rules at all.
//!   Fail closed: a 32-bit binary in such a container is killed instead of
//!   running unfiltered. (Docker's profile, default ERRNO, lists both: its
//!   i386 and x32 calls all fail with EPERM here, where libseccomp would
//!   apply the rules per arch.) Architectures this kernel never reports
//!   (arm on x86_64, mips, …) are accepted and ignored.
//! - **Rules.** `syscalls[]` entries, in profile order, per syscall number;
//!   the first entry whose conditions hold decides, none → the default
//!   action. As runc does: an entry whose action equals the default action
//!   is dropped (so a later entry for the same call decides instead), names
//!   this architecture does not have are skipped (Docker lists `chown32`,
//!   `_llseek`, … for every arch), and when one entry names the same
//!   argument index twice, every condition of that entry becomes a rule of
//!   its own (OR); otherwise an entry's conditions are ANDed.
//! - **Comparisons** are unsigned 64-bit, as libseccomp's: the high word
//!   first, then the low word; MASKED_EQ is `(arg & value) == valueTwo`.
//!
//! Layout, laid out as data and asserted by an evaluator in the tests:
//! `LD arch; JEQ native / JEQ compat; LD nr; JGE x32-bit; <binary search
//! over the sorted rule numbers: JGE splits, JEQ leaves of ≤ 4>; <one block
//! per conditional syscall>; <one RET per distinct action>`. A binary
//! search rather than a linear JEQ list (newer libseccomp's "binary tree"
//! optimisation, which runc turns on past 32 entries): every call the
//! container makes pays ~log2(n) + 4 jumps instead of up to n, about 12
//! instead of ~300 for Docker's profile. The program is built from its end
//! backwards, so every jump target is already placed when the jump is
//! emitted; a conditional jump further than 255 instructions (BPF's 8-bit
//! offsets) goes through a `JA` (32-bit offset) placed right after it,
//! shared by nearby jumps to the same target.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Action, LinuxSeccompArg, LinuxSeccompFilterFlag as Flag,
    LinuxSeccompOperator as Op,
};

use crate::error::{Error, Result};
use crate::sys::process::Insn;

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGT_K: u16 = 0x25; // BPF_JMP | BPF_JGT | BPF_K
const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

/// Offsets in `struct seccomp_data`: nr, arch, instruction_pointer, args[6].
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARGS: u32 = 16;

/// Where the two 32-bit halves of args[i] sit in the u64.
const fn arg_word(index: usize, high: bool) -> u32 {
    let base = ARGS + 8 * index as u32;
    if high == cfg!(target_endian = "little") {
        base + 4
    } else {
        base
    }
}

pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;

pub const FLAG_TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
pub const FLAG_LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
pub const FLAG_SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;

/// BPF_MAXINSNS: the kernel refuses longer classic programs.
pub const MAX_INSNS: usize = 4096;

/// Syscalls per leaf of the search: linear JEQs below this.
const LEAF: usize = 4;

/// The architecture this binary runs on, as seccomp sees it.
struct Native {
    audit: u32,
    /// The 32-bit ABI the same kernel runs: its profile name, AUDIT_ARCH.
    compat: Option<(Arch, u32)>,
    /// x86_64's x32 ABI: numbers at or above this bit, native arch value.
    x32_bit: Option<u32>,
}

#[cfg(target_arch = "x86_64")]
const NATIVE: Option<Native> =
    Some(Native { audit: 0xc000_003e, compat: Some((Arch::ScmpArchX86, 0x4000_0003)), x32_bit: Some(0x4000_0000) });
#[cfg(target_arch = "aarch64")]
const NATIVE: Option<Native> =
    Some(Native { audit: 0xc000_00b7, compat: Some((Arch::ScmpArchArm, 0x4000_0028)), x32_bit: None });
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const NATIVE: Option<Native> = None;

/// A compiled profile: the program and the `seccomp(2)` flags to load it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub program: Vec<Insn>,
    /// SECCOMP_FILTER_FLAG_* from `linux.seccomp.flags`.
    pub flags: u32,
}

/// One comparison of one argument.
#[derive(Debug, Clone, Copy)]
struct Cond {
    index: usize,
    op: Op,
    value: u64,
    value_two: u64,
}

/// Conditions that must all hold for `ret` to decide.
#[derive(Debug, Clone)]
struct Rule {
    conds: Vec<Cond>,
    ret: u32,
}

/// Compile `profile` for this architecture.
pub fn compile(profile: &LinuxSeccomp) -> Result<Compiled> {
    let native = NATIVE.ok_or_else(|| {
        Error::new("linux.seccomp")
            .because(format!("mini compiles seccomp profiles for x86_64 and aarch64, not {}", std::env::consts::ARCH))
    })?;
    if profile.listener_path().is_some() {
        return Err(Error::new("linux.seccomp.listenerPath")
            .because("seccomp notify agents are not supported")
            .hint("remove listenerPath and the SCMP_ACT_NOTIFY rules"));
    }
    let default_action = profile.default_action();
    let default = action(default_action, profile.default_errno_ret(), "linux.seccomp.defaultAction")?;
    let flags = flags(profile.flags().as_deref().unwrap_or_default())?;

    // Rules per syscall number, in profile order.
    let mut rules: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
    for (i, call) in profile.syscalls().as_deref().unwrap_or_default().iter().enumerate() {
        let ret = action(call.action(), call.errno_ret(), &format!("linux.seccomp.syscalls[{i}].action"))?;
        let conds = conditions(call.args().as_deref().unwrap_or_default(), i)?;
        for (j, name) in call.names().iter().enumerate() {
            if name.is_empty() {
                return Err(Error::new(format!("linux.seccomp.syscalls[{i}].names[{j}]"))
                    .because("empty string is not a syscall name"));
            }
        }
        if ret == default {
            continue; // runc drops these: the default already says so
        }
        let mut per_index = [0usize; 6];
        conds.iter().for_each(|c| per_index[c.index] += 1);
        let alternatives: Vec<Rule> = if per_index.iter().any(|&n| n > 1) {
            conds.iter().map(|&c| Rule { conds: vec![c], ret }).collect()
        } else {
            vec![Rule { conds, ret }]
        };
        for name in call.names() {
            // Not a syscall on this architecture: nothing to filter.
            let Ok(sysno) = syscalls::Sysno::from_str(name) else { continue };
            rules.entry(sysno.id() as u32).or_default().extend(alternatives.iter().cloned());
        }
    }

    let listed = |arch: Arch| profile.architectures().as_deref().unwrap_or_default().contains(&arch);
    let permissive = matches!(default_action, Action::ScmpActAllow | Action::ScmpActLog | Action::ScmpActTrace);
    let listed_ret = if permissive && !rules.is_empty() { RET_KILL_PROCESS } else { default };
    let compat = native.compat.map(|(name, audit)| (audit, if listed(name) { listed_ret } else { RET_KILL_PROCESS }));
    let x32 = native.x32_bit.map(|bit| (bit, if listed(Arch::ScmpArchX32) { listed_ret } else { RET_KILL_PROCESS }));

    let program = assemble(native.audit, compat, x32, default, &rules);
    if program.len() > MAX_INSNS {
        return Err(Error::new("linux.seccomp")
            .because(format!("the filter is {} BPF instructions, more than the kernel's {MAX_INSNS}", program.len()))
            .hint("merge entries or drop argument conditions"));
    }
    Ok(Compiled { program, flags })
}

/// An action as SECCOMP_RET_* (runc's mapping: errnoRet defaults to EPERM
/// for ERRNO and TRACE and is ignored by the other actions; SCMP_ACT_KILL
/// kills the thread).
fn action(action: Action, errno_ret: Option<u32>, field: &str) -> Result<u32> {
    let data = || -> Result<u32> {
        let errno = errno_ret.unwrap_or(libc::EPERM as u32);
        if errno > 0xffff {
            let field = field
                .strip_suffix("Action")
                .map(|f| format!("{f}ErrnoRet"))
                .unwrap_or_else(|| format!("{}.errnoRet", field.strip_suffix(".action").unwrap_or(field)));
            return Err(Error::new(field).because(format!("{errno} does not fit in seccomp's 16-bit return data")));
        }
        Ok(errno)
    };
    Ok(match action {
        Action::ScmpActAllow => RET_ALLOW,
        Action::ScmpActErrno => RET_ERRNO | data()?,
        Action::ScmpActKill | Action::ScmpActKillThread => RET_KILL_THREAD,
        Action::ScmpActKillProcess => RET_KILL_PROCESS,
        Action::ScmpActTrap => RET_TRAP,
        Action::ScmpActTrace => RET_TRACE | data()?,
        Action::ScmpActLog => RET_LOG,
        Action::ScmpActNotify => {
            return Err(Error::new(field)
                .because("SCMP_ACT_NOTIFY is not supported: it needs a seccomp agent on listenerPath")
                .hint("use SCMP_ACT_ERRNO or SCMP_ACT_TRACE instead"))
        }
    })
}

fn flags(flags: &[Flag]) -> Result<u32> {
    let mut bits = 0;
    for (i, flag) in flags.iter().enumerate() {
        bits |= match flag {
            Flag::SeccompFilterFlagTsync => FLAG_TSYNC,
            Flag::SeccompFilterFlagLog => FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagWaitKillableRecv => {
                return Err(Error::new(format!("linux.seccomp.flags[{i}]")).because(
                    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported: it only applies to SCMP_ACT_NOTIFY",
                ))
            }
        };
    }
    Ok(bits)
}

fn conditions(args: &[LinuxSeccompArg], call: usize) -> Result<Vec<Cond>> {
    args.iter()
        .enumerate()
        .map(|(k, a)| {
            if a.index() > 5 {
                return Err(Error::new(format!("linux.seccomp.syscalls[{call}].args[{k}].index"))
                    .because(format!("{} is out of range: a syscall has arguments 0 to 5", a.index())));
            }
            Ok(Cond { index: a.index(), op: a.op(), value: a.value(), value_two: a.value_two().unwrap_or(0) })
        })
        .collect()
}

/// A placed instruction, named by its index from the program's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Label(usize);

/// Emits a program backwards (see the module doc).
#[derive(Default)]
struct Asm {
    rev: Vec<Insn>,
    /// The latest `JA` to each far target, reused while it is in reach.
    trampolines: HashMap<Label, Label>,
}

impl Asm {
    fn emit(&mut self, code: u16, jt: u8, jf: u8, k: u32) -> Label {
        self.rev.push(Insn { code, jt, jf, k });
        Label(self.rev.len() - 1)
    }

    /// The offset a jump emitted now would need to reach `to`.
    fn distance(&self, to: Label) -> usize {
        self.rev.len() - to.0 - 1
    }

    fn ret(&mut self, k: u32) -> Label {
        self.emit(RET_K, 0, 0, k)
    }

    fn load(&mut self, offset: u32) -> Label {
        self.emit(LD_W_ABS, 0, 0, offset)
    }

    /// `to`, or a trampoline to it close enough for an 8-bit offset.
    fn near(&mut self, to: Label, limit: usize) -> Label {
        if self.distance(to) <= limit {
            return to;
        }
        if let Some(&t) = self.trampolines.get(&to) {
            if self.distance(t) <= limit {
                return t;
            }
        }
        let far = u32::try_from(self.distance(to)).expect("a program under 2^32 instructions");
        let t = self.emit(JA, 0, 0, far);
        self.trampolines.insert(to, t);
        t
    }

    fn jump(&mut self, code: u16, k: u32, jt: Label, jf: Label) -> Label {
        // One less for jt: a trampoline for jf may still land between.
        let jt = self.near(jt, 254);
        let jf = self.near(jf, 255);
        let (t, f) = (self.distance(jt) as u8, self.distance(jf) as u8);
        self.emit(code, t, f, k)
    }

    /// Make the next instruction emitted continue at `to`.
    fn fall_into(&mut self, to: Label) {
        if to.0 + 1 != self.rev.len() {
            let far = u32::try_from(self.distance(to)).expect("a program under 2^32 instructions");
            self.emit(JA, 0, 0, far);
        }
    }

    fn finish(mut self) -> Vec<Insn> {
        self.rev.reverse();
        self.rev
    }
}

fn assemble(
    native: u32,
    compat: Option<(u32, u32)>,
    x32: Option<(u32, u32)>,
    default: u32,
    rules: &BTreeMap<u32, Vec<Rule>>,
) -> Vec<Insn> {
    let mut asm = Asm::default();
    // The returns, one per distinct action, last in the program.
    let mut rets: BTreeMap<u32, Label> = BTreeMap::new();
    let actions = [default, RET_KILL_PROCESS]
        .into_iter()
        .chain(compat.map(|c| c.1))
        .chain(x32.map(|x| x.1))
        .chain(rules.values().flatten().map(|r| r.ret));
    for ret in actions {
        rets.entry(ret).or_insert_with(|| asm.ret(ret));
    }
    let default_at = rets[&default];

    // One block per syscall whose first rule has conditions.
    let mut entries: Vec<(u32, Label)> = Vec::with_capacity(rules.len());
    for (&nr, list) in rules.iter().rev() {
        entries.push((nr, block(&mut asm, list, &rets, default_at)));
    }
    entries.reverse();

    let search = tree(&mut asm, &entries, default_at);
    let after_arch = match x32 {
        Some((bit, ret)) => asm.jump(JGE_K, bit, rets[&ret], search),
        None => search,
    };
    asm.fall_into(after_arch);
    let load_nr = asm.load(NR);
    let foreign = match compat {
        Some((audit, ret)) if ret != RET_KILL_PROCESS => asm.jump(JEQ_K, audit, rets[&ret], rets[&RET_KILL_PROCESS]),
        _ => rets[&RET_KILL_PROCESS],
    };
    asm.jump(JEQ_K, native, load_nr, foreign);
    asm.load(ARCH);
    asm.finish()
}

/// The code deciding one syscall from its rules, entered with any A.
fn block(asm: &mut Asm, rules: &[Rule], rets: &BTreeMap<u32, Label>, default_at: Label) -> Label {
    // Rules after an unconditional one can never decide.
    let end = rules.iter().position(|r| r.conds.is_empty()).map_or(rules.len(), |i| i + 1);
    let rules = &rules[..end];
    let (mut fail, conditional) = match rules.split_last() {
        Some((last, before)) if last.conds.is_empty() => (rets[&last.ret], before),
        _ => (default_at, rules),
    };
    for rule in conditional.iter().rev() {
        let mut ok = rets[&rule.ret];
        for c in rule.conds.iter().rev() {
            ok = condition(asm, c, ok, fail);
        }
        fail = ok;
    }
    fail
}

/// `c` holds → `ok`, else → `fail`.
fn condition(asm: &mut Asm, c: &Cond, ok: Label, fail: Label) -> Label {
    let (hi, lo) = (arg_word(c.index, true), arg_word(c.index, false));
    let (vh, vl) = ((c.value >> 32) as u32, c.value as u32);
    match c.op {
        Op::ScmpCmpEq => {
            asm.jump(JEQ_K, vl, ok, fail);
            let x = asm.load(lo);
            asm.jump(JEQ_K, vh, x, fail);
            asm.load(hi)
        }
        Op::ScmpCmpNe => {
            asm.jump(JEQ_K, vl, fail, ok);
            let x = asm.load(lo);
            asm.jump(JEQ_K, vh, x, ok);
            asm.load(hi)
        }
        // a > v, a >= v: above in the high word, or equal there and
        // above (or equal) in the low word. a < v is not (a >= v), a <= v
        // not (a > v): the same test with its outcomes swapped.
        Op::ScmpCmpGt | Op::ScmpCmpGe | Op::ScmpCmpLt | Op::ScmpCmpLe => {
            let low = if matches!(c.op, Op::ScmpCmpGt | Op::ScmpCmpLe) { JGT_K } else { JGE_K };
            let (yes, no) = if matches!(c.op, Op::ScmpCmpGt | Op::ScmpCmpGe) { (ok, fail) } else { (fail, ok) };
            asm.jump(low, vl, yes, no);
            let x = asm.load(lo);
            let x = asm.jump(JEQ_K, vh, x, no);
            asm.jump(JGT_K, vh, yes, x);
            asm.load(hi)
        }
        Op::ScmpCmpMaskedEq => {
            let (mh, ml) = ((c.value >> 32) as u32, c.value as u32);
            let (dh, dl) = ((c.value_two >> 32) as u32, c.value_two as u32);
            asm.jump(JEQ_K, dl, ok, fail);
            asm.emit(AND_K, 0, 0, ml);
            let x = asm.load(lo);
            if mh == 0 && dh == 0 {
                return x; // the high word always matches: (hi & 0) == 0
            }
            asm.jump(JEQ_K, dh, x, fail);
            asm.emit(AND_K, 0, 0, mh);
            asm.load(hi)
        }
    }
}

/// A binary search over sorted `entries` with the syscall number in A.
fn tree(asm: &mut Asm, entries: &[(u32, Label)], default_at: Label) -> Label {
    if entries.len() <= LEAF {
        let mut next = default_at;
        for &(nr, to) in entries.iter().rev() {
            next = asm.jump(JEQ_K, nr, to, next);
        }
        return next;
    }
    let (left, right) = entries.split_at(entries.len() / 2);
    let high = tree(asm, right, default_at);
    let low = tree(asm, left, default_at);
    asm.jump(JGE_K, right[0].0, high, low)
}

/// The kernel's side, for tests: what a program returns for a call.
#[cfg(test)]
pub mod testing {
    use super::*;

    const JSET_K: u16 = 0x45;

    /// The kernel's checks on a classic seccomp program that this compiler
    /// could get wrong: length, every jump inside, no fall off the end.
    pub fn check(prog: &[Insn]) {
        assert!(!prog.is_empty() && prog.len() <= MAX_INSNS, "length {}", prog.len());
        for (pc, i) in prog.iter().enumerate() {
            let targets: Vec<usize> = match i.code {
                JA => vec![pc + 1 + i.k as usize],
                JEQ_K | JGT_K | JGE_K | JSET_K => vec![pc + 1 + i.jt as usize, pc + 1 + i.jf as usize],
                RET_K => vec![],
                _ => vec![pc + 1],
            };
            for t in targets {
                assert!(t < prog.len(), "insn {pc} {i:?} leaves the program");
            }
        }
        assert_eq!(prog.last().unwrap().code, RET_K);
    }

    /// The kernel's evaluation of the classic-BPF subset `compile` emits.
    pub fn run(prog: &[Insn], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        let word = |off: u32| -> u32 {
            match off {
                NR => nr,
                ARCH => arch,
                o if (ARGS..ARGS + 48).contains(&o) && o % 4 == 0 => {
                    let i = ((o - ARGS) / 8) as usize;
                    let high = (o - ARGS) % 8 == 4;
                    if high == cfg!(target_endian = "little") {
                        (args[i] >> 32) as u32
                    } else {
                        args[i] as u32
                    }
                }
                o => panic!("load of offset {o}"),
            }
        };
        loop {
            let i = prog[pc];
            pc += 1;
            let jump = |taken: bool| if taken { i.jt as usize } else { i.jf as usize };
            match i.code {
                LD_W_ABS => acc = word(i.k),
                AND_K => acc &= i.k,
                JA => pc += i.k as usize,
                JEQ_K => pc += jump(acc == i.k),
                JGT_K => pc += jump(acc > i.k),
                JGE_K => pc += jump(acc >= i.k),
                JSET_K => pc += jump(acc & i.k != 0),
                RET_K => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syscalls::Sysno;

    const AUDIT_NATIVE: u32 = match NATIVE {
        Some(n) => n.audit,
        None => 0,
    };
    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

    use super::testing::{check, run};

    fn nr(name: &str) -> u32 {
        Sysno::from_str(name).unwrap_or_else(|_| panic!("{name}")).id() as u32
    }

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).unwrap()
    }

    fn compiled(json: &str) -> Vec<Insn> {
        let prog = compile(&profile(json)).unwrap().program;
        check(&prog);
        prog
    }

    /// A native call of `name` with `args`.
    fn call(prog: &[Insn], name: &str, args: [u64; 6]) -> u32 {
        run(prog, AUDIT_NATIVE, nr(name), args)
    }

    fn arg0(v: u64) -> [u64; 6] {
        [v, 0, 0, 0, 0, 0]
    }

    fn error(json: &str) -> String {
        compile(&profile(json)).unwrap_err().to_string()
    }

    #[test]
    fn default_action_and_each_action_kind() {
        let prog = compiled(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13, "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22},
                {"names": ["openat"], "action": "SCMP_ACT_KILL"},
                {"names": ["getpid"], "action": "SCMP_ACT_KILL_THREAD"},
                {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["gettid"], "action": "SCMP_ACT_TRAP"},
                {"names": ["dup"], "action": "SCMP_ACT_TRACE"},
                {"names": ["dup3"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                {"names": ["uname"], "action": "SCMP_ACT_LOG"}
            ]}"#,
        );
        let none = [0; 6];
        assert_eq!(call(&prog, "read", none), RET_ALLOW);
        assert_eq!(call(&prog, "write", none), EPERM, "errnoRet defaults to EPERM");
        assert_eq!(call(&prog, "close", none), RET_ERRNO | 22);
        assert_eq!(call(&prog, "openat", none), RET_KILL_THREAD);
        assert_eq!(call(&prog, "getpid", none), RET_KILL_THREAD);
        assert_eq!(call(&prog, "getppid", none), RET_KILL_PROCESS);
        assert_eq!(call(&prog, "gettid", none), RET_TRAP);
        assert_eq!(call(&prog, "dup", none), RET_TRACE | libc::EPERM as u32);
        assert_eq!(call(&prog, "dup3", none), RET_TRACE | 7);
        assert_eq!(call(&prog, "uname", none), RET_LOG);
        assert_eq!(call(&prog, "mount", none), RET_ERRNO | 13, "defaultErrnoRet");
        assert_eq!(run(&prog, AUDIT_NATIVE, 1000, none), RET_ERRNO | 13, "a number no table has");

        let allow = compiled(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
        assert_eq!(call(&allow, "mount", none), RET_ALLOW);
        let kill = compiled(r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS"}"#);
        assert_eq!(call(&kill, "read", none), RET_KILL_PROCESS);
        let errno = compiled(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#);
        assert_eq!(call(&errno, "read", none), EPERM, "defaultErrnoRet defaults to EPERM");
    }

    /// One ALLOW rule on read's args[index] (default ERRNO).
    fn one(op: &str, index: usize, value: u64, value_two: u64) -> Vec<Insn> {
        compiled(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                "args": [{{"index": {index}, "value": {value}, "valueTwo": {value_two}, "op": "{op}"}}]}}]}}"#
        ))
    }

    #[test]
    fn each_comparison_is_unsigned_64_bit() {
        let big = 0x0000_0001_0000_0005u64; // high word set
        let neg = u64::MAX - 1; // negative as i64: must compare as huge
                                // (op, value, [(argument, allowed)])
        type Case<'a> = (&'a str, u64, &'a [(u64, bool)]);
        let cases: &[Case] = &[
            ("SCMP_CMP_EQ", big, &[(big, true), (5, false), (big | 1 << 40, false), (big + 1, false)]),
            ("SCMP_CMP_NE", big, &[(big, false), (5, true), (1 << 32, true), (0, true)]),
            ("SCMP_CMP_LT", big, &[(big - 1, true), (5, true), (big, false), (big + 1, false), (neg, false)]),
            ("SCMP_CMP_LE", big, &[(big, true), (0xffff_ffff, true), (big + 1, false), (2 << 32, false), (neg, false)]),
            ("SCMP_CMP_GE", big, &[(big, true), (big + 1, true), (neg, true), (big - 1, false), (6, false)]),
            ("SCMP_CMP_GT", big, &[(big + 1, true), (2 << 32, true), (neg, true), (big, false), (0xffff_ffff, false)]),
            // Signed would say -2 < 5; unsigned says it is far above.
            ("SCMP_CMP_GT", 5, &[(neg, true), (6, true), (5, false), (0, false)]),
            ("SCMP_CMP_LT", 5, &[(neg, false), (4, true), (5, false)]),
            ("SCMP_CMP_LE", neg, &[(neg, true), (u64::MAX, false), (0, true)]),
        ];
        for &(op, value, probes) in cases {
            for index in [0, 3, 5] {
                let prog = one(op, index, value, 0);
                for &(arg, allowed) in probes {
                    let mut args = [0u64; 6];
                    args[index] = arg;
                    let want = if allowed { RET_ALLOW } else { EPERM };
                    assert_eq!(call(&prog, "read", args), want, "{op} {value:#x} on args[{index}] = {arg:#x}");
                }
            }
        }
    }

    #[test]
    fn masked_eq_with_high_words() {
        // (arg & 0xff00000000_000000ff) == 0x1200000000_00000034
        let prog = one("SCMP_CMP_MASKED_EQ", 2, 0xff00_0000_0000_00ff, 0x1200_0000_0000_0034);
        let at2 = |v| [0, 0, v, 0, 0, 0];
        assert_eq!(call(&prog, "read", at2(0x1200_0000_0000_0034)), RET_ALLOW);
        assert_eq!(call(&prog, "read", at2(0x12ab_cdef_1234_5634)), RET_ALLOW, "bits outside the mask");
        assert_eq!(call(&prog, "read", at2(0x1300_0000_0000_0034)), EPERM, "high word differs");
        assert_eq!(call(&prog, "read", at2(0x1200_0000_0000_0035)), EPERM, "low word differs");
    }

    #[test]
    fn same_index_twice_splits_into_or_and_different_indexes_and() {
        let prog = compiled(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                    {"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}]},
                {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [
                    {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                    {"index": 2, "value": 10, "op": "SCMP_CMP_GE"}]}
            ]}"#,
        );
        // runc: every condition of an entry that repeats an index is a rule of its own.
        assert_eq!(call(&prog, "read", [1, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(&prog, "read", [2, 0, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(&prog, "read", [9, 3, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(&prog, "read", [9, 4, 0, 0, 0, 0]), EPERM);
        assert_eq!(call(&prog, "write", [1, 0, 10, 0, 0, 0]), RET_ALLOW);
        assert_eq!(call(&prog, "write", [1, 0, 9, 0, 0, 0]), EPERM);
        assert_eq!(call(&prog, "write", [2, 0, 10, 0, 0, 0]), EPERM);
    }

    #[test]
    fn first_matching_entry_decides_and_default_action_entries_drop() {
        let prog = compiled(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["read"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["read"], "action": "SCMP_ACT_KILL_PROCESS"},
                {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["write"], "action": "SCMP_ACT_LOG"}
            ]}"#,
        );
        // Same action and errno as the default: dropped, as runc does.
        assert_eq!(call(&prog, "read", arg0(0)), RET_ALLOW);
        assert_eq!(call(&prog, "read", arg0(1)), RET_TRAP);
        assert_eq!(call(&prog, "read", arg0(2)), RET_ALLOW, "unconditional entry, later ones unreachable");
        assert_eq!(call(&prog, "write", arg0(0)), RET_ERRNO | 5, "another errno is another action");
        assert_eq!(call(&prog, "write", arg0(1)), RET_LOG);
    }

    #[test]
    fn unknown_syscall_names_are_skipped() {
        let prog = compiled(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["no_such_call", "chown32", "_llseek", "read"], "action": "SCMP_ACT_ALLOW"}
            ]}"#,
        );
        assert_eq!(call(&prog, "read", [0; 6]), RET_ALLOW);
        assert_eq!(call(&prog, "write", [0; 6]), EPERM);
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(
            error(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY is not supported: it needs a seccomp agent on listenerPath (use SCMP_ACT_ERRNO or SCMP_ACT_TRACE instead)"
        );
        assert_eq!(
            error(
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}"#
            ),
            "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY is not supported: it needs a seccomp agent on listenerPath (use SCMP_ACT_ERRNO or SCMP_ACT_TRACE instead)"
        );
        assert_eq!(
            error(r#"{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}"#),
            "linux.seccomp.listenerPath: seccomp notify agents are not supported (remove listenerPath and the SCMP_ACT_NOTIFY rules)"
        );
        assert_eq!(
            error(r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#),
            "linux.seccomp.flags[1]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported: it only applies to SCMP_ACT_NOTIFY"
        );
        assert_eq!(
            error(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
            ),
            "linux.seccomp.syscalls[0].args[1].index: 6 is out of range: a syscall has arguments 0 to 5"
        );
        assert_eq!(
            error(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}]}"#
            ),
            "linux.seccomp.syscalls[0].errnoRet: 65536 does not fit in seccomp's 16-bit return data"
        );
        assert_eq!(
            error(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 70000}"#),
            "linux.seccomp.defaultErrnoRet: 70000 does not fit in seccomp's 16-bit return data"
        );
        assert_eq!(
            error(
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", ""], "action": "SCMP_ACT_ALLOW"}]}"#
            ),
            "linux.seccomp.syscalls[0].names[1]: empty string is not a syscall name"
        );
    }

    /// Unknown action, operator and flag names never reach `compile`:
    /// oci-spec's enums refuse them when config.json is parsed, and that
    /// error (bundle.rs prefixes the file) names the value.
    #[test]
    fn unknown_names_fail_to_parse() {
        let parse = |json: &str| serde_json::from_str::<LinuxSeccomp>(json).unwrap_err().to_string();
        let msg = parse(r#"{"defaultAction": "SCMP_ACT_FOO"}"#);
        assert!(msg.starts_with("unknown variant `SCMP_ACT_FOO`, expected one of `SCMP_ACT_KILL`"), "{msg}");
        let msg = parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]}]}"#,
        );
        assert!(msg.starts_with("unknown variant `SCMP_CMP_FOO`, expected one of `SCMP_CMP_NE`"), "{msg}");
        let msg = parse(r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_FOO"]}"#);
        assert!(
            msg.starts_with("unknown variant `SECCOMP_FILTER_FLAG_FOO`, expected one of `SECCOMP_FILTER_FLAG_LOG`"),
            "{msg}"
        );
    }

    #[test]
    fn flags_become_bits() {
        let p = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        );
        assert_eq!(compile(&p).unwrap().flags, 1 | 2 | 4);
        assert_eq!(compile(&profile(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)).unwrap().flags, 0);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn foreign_architectures_and_x32() {
        const I386: u32 = 0x4000_0003;
        let x32_read = 0x4000_0000 | nr("read");
        let errno = |archs: &str| {
            compiled(&format!(
                r#"{{"defaultAction": "SCMP_ACT_ERRNO", "architectures": [{archs}],
                    "syscalls": [{{"names": ["read"], "action": "SCMP_ACT_ALLOW"}}]}}"#
            ))
        };
        let prog = errno(r#""SCMP_ARCH_X86_64""#);
        assert_eq!(run(&prog, I386, 3, [0; 6]), RET_KILL_PROCESS, "unlisted i386");
        assert_eq!(run(&prog, 0xc000_00b7, 63, [0; 6]), RET_KILL_PROCESS, "an arch this kernel never reports");
        assert_eq!(run(&prog, AUDIT_NATIVE, x32_read, [0; 6]), RET_KILL_PROCESS, "unlisted x32");
        assert_eq!(call(&prog, "read", [0; 6]), RET_ALLOW);

        let prog = errno(r#""SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_ARM""#);
        assert_eq!(run(&prog, I386, 3, [0; 6]), EPERM, "listed i386 gets the default");
        assert_eq!(run(&prog, AUDIT_NATIVE, x32_read, [0; 6]), EPERM, "listed x32 gets the default");
        assert_eq!(run(&prog, 0x4000_0028, 3, [0; 6]), RET_KILL_PROCESS, "arm is never this kernel's");
        assert_eq!(errno(r#""SCMP_ARCH_NATIVE""#), errno(r#""SCMP_ARCH_X86_64""#));

        // A permissive default with rules: foreign calls would skip the
        // rules, so they are killed even when listed.
        let deny = compiled(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        assert_eq!(run(&deny, I386, 21, [0; 6]), RET_KILL_PROCESS);
        assert_eq!(run(&deny, AUDIT_NATIVE, 0x4000_0000 | nr("mount"), [0; 6]), RET_KILL_PROCESS);
        assert_eq!(call(&deny, "mount", [0; 6]), EPERM);
        assert_eq!(call(&deny, "read", [0; 6]), RET_ALLOW);
        // No rules at all: the default is the whole policy, for every arch listed.
        let open =
            compiled(r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]}"#);
        assert_eq!(run(&open, I386, 21, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn long_programs_use_trampolines_and_stay_correct() {
        // Every syscall of this arch, each with its own argument rule:
        // far more than 255 instructions between tree and blocks.
        let names: Vec<String> = Sysno::iter().map(|s| s.name().to_string()).collect();
        let calls: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(r#"{{"names": ["{n}"], "action": "SCMP_ACT_ALLOW", "args": [{{"index": 1, "value": {i}, "op": "SCMP_CMP_EQ"}}]}}"#)
            })
            .collect();
        let json = format!(r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{}]}}"#, calls.join(","));
        let prog = compiled(&json);
        assert!(prog.len() > 1000, "{}", prog.len());
        assert!(prog.iter().any(|i| i.code == JA), "expected trampolines");
        for (i, n) in names.iter().enumerate() {
            assert_eq!(call(&prog, n, [0, i as u64, 0, 0, 0, 0]), RET_ALLOW, "{n}");
            assert_eq!(call(&prog, n, [0, i as u64 + 1, 0, 0, 0, 0]), EPERM, "{n}");
        }

        // Too many conditions for one program.
        let args: Vec<String> =
            (0..1100).map(|v| format!(r#"{{"index": 0, "value": {v}, "op": "SCMP_CMP_EQ"}}"#)).collect();
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{}]}}]}}"#,
            args.join(",")
        );
        let msg = error(&json);
        assert!(msg.starts_with("linux.seccomp: the filter is "), "{msg}");
        assert!(msg.contains("BPF instructions, more than the kernel's 4096 (merge entries"), "{msg}");
    }

    fn docker_default() -> LinuxSeccomp {
        profile(include_str!("testdata/docker-default-seccomp.json"))
    }

    #[test]
    fn docker_default_profile() {
        let compiled = compile(&docker_default()).unwrap();
        let prog = &compiled.program;
        check(prog);
        // 440 today: 6 of header, ~300 JEQ leaves and 104 JGE splits, the
        // clone, socket and personality blocks, 5 trampolines, 4 returns.
        assert!(prog.len() <= MAX_INSNS);
        assert!(prog.len() < 512, "the layout grew: {} instructions", prog.len());
        assert_eq!(compiled.flags, 0);
        let none = [0; 6];
        for name in ["read", "write", "getpid", "execve", "exit_group", "futex", "rt_sigreturn", "chroot"] {
            assert_eq!(call(prog, name, none), RET_ALLOW, "{name}");
        }
        // Plain fork-like clone (SIGCHLD | CLONE_VM | …) is fine; any namespace flag is not.
        let fork_flags = (libc::SIGCHLD | libc::CLONE_VM | libc::CLONE_FS | libc::CLONE_FILES) as u64;
        assert_eq!(call(prog, "clone", arg0(fork_flags)), RET_ALLOW);
        for ns in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET, libc::CLONE_NEWPID] {
            assert_eq!(call(prog, "clone", arg0(fork_flags | ns as u64)), EPERM, "clone flag {ns:#x}");
        }
        assert_eq!(call(prog, "clone3", none), ENOSYS);
        for name in ["io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "mount", "unshare", "setns"]
        {
            assert_eq!(call(prog, name, none), EPERM, "{name}");
        }
        assert_eq!(run(prog, AUDIT_NATIVE, 1000, none), EPERM);
        for (persona, allowed) in
            [(0, true), (8, true), (131072, true), (131080, true), (0xffff_ffff, true), (1, false)]
        {
            let want = if allowed { RET_ALLOW } else { EPERM };
            assert_eq!(call(prog, "personality", arg0(persona)), want, "personality({persona:#x})");
        }
        assert_eq!(call(prog, "socket", arg0(libc::AF_INET as u64)), RET_ALLOW);
        assert_eq!(call(prog, "socket", arg0(libc::AF_VSOCK as u64)), EPERM);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(call(prog, "arch_prctl", none), RET_ALLOW);
            assert_eq!(run(prog, 0x4000_0003, 3, none), EPERM, "i386 is listed: the default");
            assert_eq!(run(prog, AUDIT_NATIVE, 0x4000_0000, none), EPERM, "x32 is listed: the default");
        }
    }

    /// The compiled Docker profile in a real kernel, in a forked child.
    #[test]
    fn docker_default_profile_in_the_kernel() {
        let compiled = compile(&docker_default()).unwrap();
        // SAFETY: the child only makes raw syscalls and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            // SAFETY: prctl, syscall and _exit on plain values.
            unsafe {
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    libc::_exit(10);
                }
                if crate::sys::process::load_seccomp(&compiled.program, compiled.flags).is_err() {
                    libc::_exit(11);
                }
                let mut params = [0u8; 120]; // struct io_uring_params
                let r = libc::syscall(libc::SYS_io_uring_setup, 1, params.as_mut_ptr());
                if r != -1 || errno() != libc::EPERM {
                    libc::_exit(12);
                }
                let r = libc::syscall(libc::SYS_clone3, 0usize, 0usize);
                if r != -1 || errno() != libc::ENOSYS {
                    libc::_exit(13);
                }
                if libc::getpid() <= 0 {
                    libc::_exit(14);
                }
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child ended by signal: status {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "10 prctl, 11 load, 12 io_uring_setup, 13 clone3, 14 getpid");
    }

    #[test]
    fn an_empty_profile_is_its_default_action() {
        let p = LinuxSeccomp::default();
        assert!(p.syscalls().is_none());
        let prog = compile(&p).unwrap().program;
        check(&prog);
        assert_eq!(call(&prog, "read", [0; 6]), RET_ALLOW);
    }
}
