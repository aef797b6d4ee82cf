//! tgbench_rust: times the tapegen-generated Rust gradient kernels (W1
//! rosenbrock n = 1000 and W2 mlp) against hand-written Rust gradients of the
//! same functions, with the method of the C harness: every result is first
//! checked against the hand-written C gradient (relative 1e-8), then the two
//! are measured in interleaved rounds, each measurement repeating the call
//! until it lasts at least `--min-time` seconds; medians and ranges of CPU
//! (thread) and wall time per call, and of the per-round ratio.
//!
//! usage: tgbench_rust DATA_DIR [--rounds R] [--min-time S] > rows.csv
//! (CSV rows without header, in tgbench's format.)

#![allow(dead_code, unused_mut)]

#[allow(unused_imports)]
use std::hint::black_box;
use std::process::exit;

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clk: i32, tp: *mut Timespec) -> i32;
}

const CLOCK_MONOTONIC: i32 = 1;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

fn clock(id: i32) -> f64 {
    let mut t = Timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into t.
    unsafe {
        clock_gettime(id, &mut t);
    }
    t.tv_sec as f64 + 1e-9 * t.tv_nsec as f64
}

fn read_vec(dir: &str, name: &str) -> Vec<f64> {
    let path = format!("{}/{}", dir, name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        eprintln!("tgbench_rust: cannot read {}: {}", path, e);
        exit(2)
    });
    let mut it = text.split_whitespace();
    let n: usize = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let v: Vec<f64> = it.map(|s| s.parse().expect("number")).collect();
    if v.len() != n {
        eprintln!("tgbench_rust: {}: expected {} values, got {}", path, n, v.len());
        exit(2);
    }
    v
}

/// Relative error with a floor, as bench_relerr in bench/src/bench.c.
fn relerr(got: &[f64], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, w| m.max(w.abs()));
    let mut err = 0.0f64;
    for (g, w) in got.iter().zip(want) {
        let den = w.abs().max(1e-6 * scale).max(1e-300);
        let e = (g - w).abs() / den;
        if !(e <= err) {
            err = e;
        }
    }
    if got.len() != want.len() {
        err = f64::INFINITY;
    }
    err
}

// ------------------------------------------------------------ hand-written

/// W1: gradient of sum 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2.
fn w1_grad_hand(x: &[f64], g: &mut [f64]) {
    let n = x.len();
    assert_eq!(g.len(), n);
    g.fill(0.0);
    for i in 0..n.saturating_sub(1) {
        let d = x[i + 1] - x[i] * x[i];
        let e = 1.0 - x[i];
        g[i] += -400.0 * x[i] * d - 2.0 * e;
        g[i + 1] += 200.0 * d;
    }
}

const IN: usize = 8;
const H: usize = 16;
const S: usize = 16;
const W1: usize = 0;
const B1: usize = W1 + H * IN;
const W2: usize = B1 + H;
const B2: usize = W2 + H * H;
const W3: usize = B2 + H;
const B3: usize = W3 + H;
const NP: usize = B3 + 1;

struct Mlp {
    inputs: [[f64; IN]; S],
    targets: [f64; S],
}

/// W2: backpropagation through the tanh MLP 8 -> 16 -> 16 -> 1, MSE loss.
fn w2_grad_hand(m: &Mlp, th: &[f64], g: &mut [f64]) {
    assert!(th.len() == NP && g.len() == NP);
    g.fill(0.0);
    for s in 0..S {
        let inp = &m.inputs[s];
        let mut h1 = [0.0f64; H];
        let mut h2 = [0.0f64; H];
        for i in 0..H {
            let mut a = th[B1 + i];
            for j in 0..IN {
                a += th[W1 + i * IN + j] * inp[j];
            }
            h1[i] = a.tanh();
        }
        for i in 0..H {
            let mut a = th[B2 + i];
            for j in 0..H {
                a += th[W2 + i * H + j] * h1[j];
            }
            h2[i] = a.tanh();
        }
        let mut y = th[B3];
        for j in 0..H {
            y += th[W3 + j] * h2[j];
        }
        let dy = (2.0 / S as f64) * (y - m.targets[s]);
        g[B3] += dy;
        let mut da2 = [0.0f64; H];
        for j in 0..H {
            g[W3 + j] += dy * h2[j];
            da2[j] = th[W3 + j] * dy * (1.0 - h2[j] * h2[j]);
        }
        let mut dh1 = [0.0f64; H];
        for i in 0..H {
            g[B2 + i] += da2[i];
            for j in 0..H {
                g[W2 + i * H + j] += da2[i] * h1[j];
                dh1[j] += th[W2 + i * H + j] * da2[i];
            }
        }
        for i in 0..H {
            let da1 = dh1[i] * (1.0 - h1[i] * h1[i]);
            g[B1 + i] += da1;
            for j in 0..IN {
                g[W1 + i * IN + j] += da1 * inp[j];
            }
        }
    }
}

// ------------------------------------------------------------------ timing

struct Case<'a> {
    system: &'static str,
    call: Box<dyn FnMut() + 'a>,
    reps: u64,
    calls: u64,
    cpu: Vec<f64>,
    wall: Vec<f64>,
}

fn time_batch(c: &mut Case, reps: u64) -> (f64, f64) {
    let (c0, w0) = (clock(CLOCK_THREAD_CPUTIME_ID), clock(CLOCK_MONOTONIC));
    for _ in 0..reps {
        (c.call)();
    }
    (clock(CLOCK_THREAD_CPUTIME_ID) - c0, clock(CLOCK_MONOTONIC) - w0)
}

fn calibrate(c: &mut Case, target: f64) {
    let mut reps = 1u64;
    let wall = loop {
        let (_, wall) = time_batch(c, reps);
        if wall >= target / 16.0 || reps >= 1 << 40 {
            break wall;
        }
        let grow = if wall > 0.0 { (target / 16.0 / wall * 2.0).clamp(2.0, 16.0) } else { 16.0 };
        reps = (reps as f64 * grow) as u64;
    };
    let per = wall / reps as f64;
    c.reps = if per > 0.0 { ((target / 4.0 / per) as u64).max(1) } else { reps };
}

fn measure(c: &mut Case, target: f64) {
    let (c0, w0) = (clock(CLOCK_THREAD_CPUTIME_ID), clock(CLOCK_MONOTONIC));
    let mut calls = 0u64;
    let mut w1;
    loop {
        for _ in 0..c.reps {
            (c.call)();
        }
        calls += c.reps;
        w1 = clock(CLOCK_MONOTONIC);
        if w1 - w0 >= target {
            break;
        }
    }
    let c1 = clock(CLOCK_THREAD_CPUTIME_ID);
    c.calls += calls;
    c.cpu.push((c1 - c0) / calls as f64);
    c.wall.push((w1 - w0) / calls as f64);
}

fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    let med = if n % 2 == 1 { s[n / 2] } else { 0.5 * (s[n / 2 - 1] + s[n / 2]) };
    (med, s[0], s[n - 1])
}

fn ratios(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

fn run(workload: &str, size: &str, cases: &mut [Case], errs: &[f64], rounds: usize, target: f64) {
    for c in cases.iter_mut() {
        calibrate(c, target);
    }
    let nc = cases.len();
    for r in 0..rounds {
        for k in 0..nc {
            let idx = (k + r) % nc;
            measure(&mut cases[idx], target);
        }
    }
    // cases[0] is the hand-written reference
    let (ref_cpu, _ref_wall) = (cases[0].cpu.clone(), cases[0].wall.clone());
    for (i, c) in cases.iter().enumerate() {
        let (cm, cmin, cmax) = stats(&c.cpu);
        let (wm, wmin, wmax) = stats(&c.wall);
        let (rm, rmin, rmax) = stats(&ratios(&c.cpu, &ref_cpu));
        println!(
            "time,{},{},{},grad,s,{},{},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{:.6e},{:.6},{:.6},{:.6},,,,{:.3e},ok,{}",
            workload, size, c.system, c.cpu.len(), c.calls, cm, cmin, cmax, wm, wmin, wmax, rm, rmin,
            rmax, errs[i],
            if i == 0 { "hand-written Rust (x native = vs this)" } else { "tapegen-generated crate; TG_OPT_BASIC" }
        );
    }
    let (rm, rmin, rmax) = stats(&ratios(&cases[1].cpu, &cases[0].cpu));
    println!(
        "ratio,{},{},Rust generated / hand-written Rust,Rust generated grad / Rust hand grad (cpu),x,{},,{:.6},{:.6},{:.6},,,,,,,,,,,,",
        workload, size, rounds, rm, rmin, rmax
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: tgbench_rust DATA_DIR [--rounds R] [--min-time S]");
        exit(2);
    }
    let dir = args[1].clone();
    let mut rounds = 7usize;
    let mut target = 0.2f64;
    let mut i = 2;
    while i < args.len() {
        match args[i].as_str() {
            "--rounds" if i + 1 < args.len() => {
                rounds = args[i + 1].parse().expect("--rounds N");
                i += 1;
            }
            "--min-time" if i + 1 < args.len() => {
                target = args[i + 1].parse().expect("--min-time S");
                i += 1;
            }
            a => {
                eprintln!("tgbench_rust: unknown option {}", a);
                exit(2);
            }
        }
        i += 1;
    }
    let tol = 1e-8;
    let mut failed = false;

    let mut ran = 0;
    #[cfg(feature = "w1")]
    {
        failed |= !bench_w1(&dir, rounds, target, tol);
        ran += 1;
    }
    #[cfg(feature = "w2")]
    {
        failed |= !bench_w2(&dir, rounds, target, tol);
        ran += 1;
    }
    if ran == 0 {
        eprintln!("tgbench_rust: built without any generated crate (features w1, w2)");
    }
    let _ = (rounds, target, tol, &dir);
    if failed {
        exit(1);
    }
}

/// W1 rosenbrock: returns false on a check failure.
#[cfg(feature = "w1")]
fn bench_w1(dir: &str, rounds: usize, target: f64, tol: f64) -> bool {
    let x = read_vec(dir, "w1_x.txt");
    let want = read_vec(dir, "w1_grad.txt");
    let n = x.len();
    if n != w1_grad::INPUTS_GRAD[0].1 {
        eprintln!("tgbench_rust: W1 size {} does not match the generated kernel", n);
        exit(2);
    }
    let mut g_hand = vec![0.0; n];
    let mut g_gen = vec![0.0; n];
    let mut work = vec![0.0; w1_grad::WORK_LEN_GRAD];
    w1_grad_hand(&x, &mut g_hand);
    if let Err(e) = w1_grad::grad(&x, &mut g_gen, &mut work) {
        eprintln!("tgbench_rust: W1 generated kernel failed: {}", e);
        return false;
    }
    let errs = [relerr(&g_hand, &want), relerr(&g_gen, &want)];
    let mut ok = true;
    for (e, who) in errs.iter().zip(["hand-written Rust", "generated Rust"]) {
        if !(*e <= tol) {
            eprintln!(
                "CHECK FAILED: W1 rosenbrock n={}: {} gradient differs from the hand-written C one: max rel err {:.3e}",
                n, who, e
            );
            ok = false;
        }
    }
    if !ok {
        return false;
    }
    let x2 = x.clone();
    let mut cases = vec![
        Case {
            system: "Rust hand",
            call: Box::new(move || w1_grad_hand(black_box(&x), black_box(&mut g_hand))),
            reps: 1,
            calls: 0,
            cpu: vec![],
            wall: vec![],
        },
        Case {
            system: "Rust generated",
            call: Box::new(move || {
                let _ = w1_grad::grad(black_box(&x2), black_box(&mut g_gen), black_box(&mut work));
            }),
            reps: 1,
            calls: 0,
            cpu: vec![],
            wall: vec![],
        },
    ];
    run("W1 rosenbrock", &format!("n={}", n), &mut cases, &errs, rounds, target);
    true
}

/// W2 mlp: returns false on a check failure.
#[cfg(feature = "w2")]
fn bench_w2(dir: &str, rounds: usize, target: f64, tol: f64) -> bool {
    let th = read_vec(dir, "w2_theta.txt");
    let want = read_vec(dir, "w2_grad.txt");
    let inp = read_vec(dir, "w2_inputs.txt");
    let tgt = read_vec(dir, "w2_targets.txt");
    if th.len() != NP || inp.len() != S * IN || tgt.len() != S || w2_grad::INPUTS_GRAD[0].1 != NP {
        eprintln!("tgbench_rust: W2 data or kernel has the wrong shape");
        exit(2);
    }
    let mut m = Mlp { inputs: [[0.0; IN]; S], targets: [0.0; S] };
    for s in 0..S {
        for j in 0..IN {
            m.inputs[s][j] = inp[s * IN + j];
        }
        m.targets[s] = tgt[s];
    }
    let mut g_hand = vec![0.0; NP];
    let mut g_gen = vec![0.0; NP];
    let mut work = vec![0.0; w2_grad::WORK_LEN_GRAD];
    w2_grad_hand(&m, &th, &mut g_hand);
    if let Err(e) = w2_grad::grad(&th, &mut g_gen, &mut work) {
        eprintln!("tgbench_rust: W2 generated kernel failed: {}", e);
        return false;
    }
    let errs = [relerr(&g_hand, &want), relerr(&g_gen, &want)];
    let mut ok = true;
    for (e, who) in errs.iter().zip(["hand-written Rust", "generated Rust"]) {
        if !(*e <= tol) {
            eprintln!(
                "CHECK FAILED: W2 mlp p={}: {} gradient differs from the hand-written C one: max rel err {:.3e}",
                NP, who, e
            );
            ok = false;
        }
    }
    if !ok {
        return false;
    }
    let th2 = th.clone();
    let mref = &m;
    let mut cases = vec![
        Case {
            system: "Rust hand",
            call: Box::new(move || w2_grad_hand(black_box(mref), black_box(&th), black_box(&mut g_hand))),
            reps: 1,
            calls: 0,
            cpu: vec![],
            wall: vec![],
        },
        Case {
            system: "Rust generated",
            call: Box::new(move || {
                let _ = w2_grad::grad(black_box(&th2), black_box(&mut g_gen), black_box(&mut work));
            }),
            reps: 1,
            calls: 0,
            cpu: vec![],
            wall: vec![],
        },
    ];
    run("W2 mlp", &format!("p={}", NP), &mut cases, &errs, rounds, target);
    true
}
