//! tgbench_rust: times the tapegen-generated Rust gradient kernels (W1
//! rosenbrock n = 1000 and W2 mlp, flat; W1 as a map and W3 Lorenz RK4 as a
//! scan at 10^3 and 10^5 steps, loops kept, issue 11) against hand-written
//! Rust gradients of the same functions (for W3 the discrete RK4 adjoint,
//! as bench/src/workloads.c), with the method of the C harness: every result is first
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

/// W3: the Lorenz right-hand side.
fn lorenz_rhs(s: &[f64; 3], sig: f64, rho: f64, beta: f64) -> [f64; 3] {
    [sig * (s[1] - s[0]), s[0] * (rho - s[2]) - s[1], s[0] * s[1] - beta * s[2]]
}

/// W3: one classic RK4 step of size dt (the operations of workloads.c's rk4_step).
fn rk4_step(s: &mut [f64; 3], sig: f64, rho: f64, beta: f64, dt: f64) {
    let (h2, h6) = (0.5 * dt, dt / 6.0);
    let k1 = lorenz_rhs(s, sig, rho, beta);
    let t = [s[0] + h2 * k1[0], s[1] + h2 * k1[1], s[2] + h2 * k1[2]];
    let k2 = lorenz_rhs(&t, sig, rho, beta);
    let t = [s[0] + h2 * k2[0], s[1] + h2 * k2[1], s[2] + h2 * k2[2]];
    let k3 = lorenz_rhs(&t, sig, rho, beta);
    let t = [s[0] + dt * k3[0], s[1] + dt * k3[1], s[2] + dt * k3[2]];
    let k4 = lorenz_rhs(&t, sig, rho, beta);
    for c in 0..3 {
        s[c] = s[c] + h6 * (((k1[c] + 2.0 * k2[c]) + 2.0 * k3[c]) + k4[c]);
    }
}

/// lam_s += A(s)^T l, lam_p += B(s)^T l with A = dF/ds, B = dF/d(sig, rho, beta).
fn rhs_adjoint(s: &[f64; 3], sig: f64, rho: f64, beta: f64, l: &[f64; 3], ls: &mut [f64; 3], lp: &mut [f64; 3]) {
    ls[0] += -sig * l[0] + (rho - s[2]) * l[1] + s[1] * l[2];
    ls[1] += sig * l[0] - l[1] + s[0] * l[2];
    ls[2] += -s[0] * l[1] - beta * l[2];
    lp[0] += (s[1] - s[0]) * l[0];
    lp[1] += s[0] * l[1];
    lp[2] += -s[2] * l[2];
}

/// W3: gradient of x^2 + y^2 + z^2 after `steps` RK4 steps with respect to
/// u = (x0, y0, z0, sigma, rho, beta), by the discrete adjoint of the scheme
/// written by hand (as workloads.c's w3_grad_steps): a forward pass stores
/// the states in `traj` (3 (steps + 1) values), the reverse pass recomputes
/// each step's stages and runs them backwards.
fn w3_grad_hand(u: &[f64], steps: usize, dt: f64, g: &mut [f64], traj: &mut [f64]) {
    assert!(u.len() == 6 && g.len() == 6 && traj.len() >= 3 * (steps + 1));
    let (sig, rho, beta) = (u[3], u[4], u[5]);
    let (h2, h6) = (0.5 * dt, dt / 6.0);
    let mut s = [u[0], u[1], u[2]];
    traj[0..3].copy_from_slice(&s);
    for k in 0..steps {
        rk4_step(&mut s, sig, rho, beta, dt);
        traj[3 * (k + 1)..3 * (k + 2)].copy_from_slice(&s);
    }
    let mut lam = [2.0 * s[0], 2.0 * s[1], 2.0 * s[2]];
    let mut lp = [0.0f64; 3];
    for k in (0..steps).rev() {
        let s0 = [traj[3 * k], traj[3 * k + 1], traj[3 * k + 2]];
        let k1 = lorenz_rhs(&s0, sig, rho, beta);
        let s2 = [s0[0] + h2 * k1[0], s0[1] + h2 * k1[1], s0[2] + h2 * k1[2]];
        let k2 = lorenz_rhs(&s2, sig, rho, beta);
        let s3 = [s0[0] + h2 * k2[0], s0[1] + h2 * k2[1], s0[2] + h2 * k2[2]];
        let k3 = lorenz_rhs(&s3, sig, rho, beta);
        let s4 = [s0[0] + dt * k3[0], s0[1] + dt * k3[1], s0[2] + dt * k3[2]];
        let mut ls = lam;
        let mut lk1 = [0.0f64; 3];
        let mut lk2 = [0.0f64; 3];
        let mut lk3 = [0.0f64; 3];
        let mut lk4 = [0.0f64; 3];
        for c in 0..3 {
            lk1[c] = h6 * lam[c];
            lk2[c] = 2.0 * h6 * lam[c];
            lk3[c] = 2.0 * h6 * lam[c];
            lk4[c] = h6 * lam[c];
        }
        // k4 = F(s4), s4 = s + dt k3
        let mut lt = [0.0f64; 3];
        rhs_adjoint(&s4, sig, rho, beta, &lk4, &mut lt, &mut lp);
        for c in 0..3 {
            ls[c] += lt[c];
            lk3[c] += dt * lt[c];
        }
        // k3 = F(s3), s3 = s + h2 k2
        let mut lt = [0.0f64; 3];
        rhs_adjoint(&s3, sig, rho, beta, &lk3, &mut lt, &mut lp);
        for c in 0..3 {
            ls[c] += lt[c];
            lk2[c] += h2 * lt[c];
        }
        // k2 = F(s2), s2 = s + h2 k1
        let mut lt = [0.0f64; 3];
        rhs_adjoint(&s2, sig, rho, beta, &lk2, &mut lt, &mut lp);
        for c in 0..3 {
            ls[c] += lt[c];
            lk1[c] += h2 * lt[c];
        }
        // k1 = F(s)
        rhs_adjoint(&s0, sig, rho, beta, &lk1, &mut ls, &mut lp);
        lam = ls;
    }
    g[0..3].copy_from_slice(&lam);
    g[3..6].copy_from_slice(&lp);
}

// ------------------------------------------------------------------ timing

struct Case<'a> {
    system: &'static str,
    note: &'static str,
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
            if i == 0 { "hand-written Rust (x native = vs this)" } else { c.note }
        );
    }
    if nc < 2 {
        return;
    }
    let (rm, rmin, rmax) = stats(&ratios(&cases[1].cpu, &cases[0].cpu));
    println!(
        "ratio,{},{},{} / hand-written Rust,{} grad / Rust hand grad (cpu),x,{},,{:.6},{:.6},{:.6},,,,,,,,,,,,",
        workload, size, cases[1].system, cases[1].system, rounds, rm, rmin, rmax
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
    #[cfg(feature = "w1m")]
    {
        failed |= !bench_w1m(&dir, rounds, target, tol);
        ran += 1;
    }
    // W3: the hand-written Rust RK4 adjoint, checked against the hand-written
    // C one at every step count tgbench --rust-gen wrote, then timed, against
    // the generated scan gradient crate when it is built in.
    for steps in read_vec(&dir, "w3s_steps.txt").iter().map(|&v| v as usize) {
        failed |= !bench_w3s(&dir, steps, rounds, target, tol);
        ran += 1;
    }
    if ran == 0 {
        eprintln!("tgbench_rust: built without any generated crate (features w1, w2, w1m, w3s, w3s5)");
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
            note: "",
            call: Box::new(move || w1_grad_hand(black_box(&x), black_box(&mut g_hand))),
            reps: 1,
            calls: 0,
            cpu: vec![],
            wall: vec![],
        },
        Case {
            system: "Rust generated",
            note: "tapegen-generated crate; TG_OPT_BASIC",
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
            note: "",
            call: Box::new(move || w2_grad_hand(black_box(mref), black_box(&th), black_box(&mut g_hand))),
            reps: 1,
            calls: 0,
            cpu: vec![],
            wall: vec![],
        },
        Case {
            system: "Rust generated",
            note: "tapegen-generated crate; TG_OPT_BASIC",
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

/// W1 as a map (issue 11): the generated gradient of the looped tape
/// (crate w1m_grad, n = 1000) against the hand-written Rust gradient.
#[cfg(feature = "w1m")]
fn bench_w1m(dir: &str, rounds: usize, target: f64, tol: f64) -> bool {
    let x = read_vec(dir, "w1_x.txt");
    let want = read_vec(dir, "w1_grad.txt");
    let n = x.len();
    if n != w1m_grad::INPUTS_GRAD[0].1 {
        eprintln!("tgbench_rust: W1 size {} does not match the generated map kernel", n);
        exit(2);
    }
    let mut g_hand = vec![0.0; n];
    let mut g_gen = vec![0.0; n];
    let mut work = vec![0.0; w1m_grad::WORK_LEN_GRAD];
    w1_grad_hand(&x, &mut g_hand);
    if let Err(e) = w1m_grad::grad(&x, &mut g_gen, &mut work) {
        eprintln!("tgbench_rust: W1 generated map kernel failed: {}", e);
        return false;
    }
    let errs = [relerr(&g_hand, &want), relerr(&g_gen, &want)];
    for (e, who) in errs.iter().zip(["hand-written Rust", "generated Rust (map)"]) {
        if !(*e <= tol) {
            eprintln!(
                "CHECK FAILED: W1 rosenbrock n={}: {} gradient differs from the hand-written C one: max rel err {:.3e}",
                n, who, e
            );
            return false;
        }
    }
    let x2 = x.clone();
    let mut cases = vec![
        Case {
            system: "Rust hand",
            note: "",
            call: Box::new(move || w1_grad_hand(black_box(&x), black_box(&mut g_hand))),
            reps: 1,
            calls: 0,
            cpu: vec![],
            wall: vec![],
        },
        Case {
            system: "Rust generated loop",
            note: "tapegen-generated crate of the map's gradient tape; TG_OPT_BASIC",
            call: Box::new(move || {
                let _ = w1m_grad::grad(black_box(&x2), black_box(&mut g_gen), black_box(&mut work));
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

/// The generated W3 scan gradient at `steps` steps, when its crate is built
/// in: Some(result of one call) (None: not built in).
#[allow(unused_variables)]
fn w3s_generated(steps: usize) -> Option<Box<dyn FnMut(&[f64], &mut [f64]) -> Result<(), String>>> {
    #[cfg(feature = "w3s")]
    {
        if steps == 1000 {
            let mut work = vec![0.0; w3s_grad::WORK_LEN_GRAD];
            return Some(Box::new(move |u: &[f64], g: &mut [f64]| {
                w3s_grad::grad(u, g, &mut work).map_err(|e| format!("{}", e))
            }));
        }
    }
    #[cfg(feature = "w3s5")]
    {
        if steps == 100000 {
            let mut work = vec![0.0; w3s5_grad::WORK_LEN_GRAD];
            return Some(Box::new(move |u: &[f64], g: &mut [f64]| {
                w3s5_grad::grad(u, g, &mut work).map_err(|e| format!("{}", e))
            }));
        }
    }
    None
}

/// W3 as a scan at `steps` RK4 steps over the time span 10 (dt = 10 / steps):
/// the hand-written Rust adjoint against the hand-written C gradient, then
/// timed, against the generated crate when built in.  false on a check failure.
fn bench_w3s(dir: &str, steps: usize, rounds: usize, target: f64, tol: f64) -> bool {
    let u = read_vec(dir, "w3_u.txt");
    let want = read_vec(dir, &format!("w3s_grad_{}.txt", steps));
    let dt = 10.0 / steps as f64;
    let mut g_hand = vec![0.0; 6];
    let mut traj = vec![0.0; 3 * (steps + 1)];
    w3_grad_hand(&u, steps, dt, &mut g_hand, &mut traj);
    let mut errs = vec![relerr(&g_hand, &want)];
    let wl = "W3 lorenz_rk4 scan";
    let size = format!("steps={}", steps);
    if !(errs[0] <= tol) {
        eprintln!(
            "CHECK FAILED: {} {}: hand-written Rust gradient differs from the hand-written C one: max rel err {:.3e}",
            wl, size, errs[0]
        );
        return false;
    }
    let u2 = u.clone();
    let mut cases = vec![Case {
        system: "Rust hand",
        note: "",
        call: Box::new(move || w3_grad_hand(black_box(&u), steps, dt, black_box(&mut g_hand), black_box(&mut traj))),
        reps: 1,
        calls: 0,
        cpu: vec![],
        wall: vec![],
    }];
    if let Some(mut gen) = w3s_generated(steps) {
        let mut g_gen = vec![0.0; 6];
        if let Err(e) = gen(&u2, &mut g_gen) {
            eprintln!("tgbench_rust: {} {}: generated kernel failed: {}", wl, size, e);
            return false;
        }
        let e = relerr(&g_gen, &want);
        if !(e <= tol) {
            eprintln!(
                "CHECK FAILED: {} {}: generated Rust gradient differs from the hand-written C one: max rel err {:.3e}",
                wl, size, e
            );
            return false;
        }
        errs.push(e);
        cases.push(Case {
            system: "Rust generated loop",
            note: "tapegen-generated crate of the scan's gradient tape; TG_OPT_BASIC",
            call: Box::new(move || {
                let _ = gen(black_box(&u2), black_box(&mut g_gen));
            }),
            reps: 1,
            calls: 0,
            cpu: vec![],
            wall: vec![],
        });
    }
    run(wl, &size, &mut cases, &errs, rounds, target);
    true
}
