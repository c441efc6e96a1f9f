// The logit of a product of two probabilities given by their logits, y = logit(σ(a)·σ(b))
// (ESMM: p(click and conversion) = p(click)·p(conversion | click)), and its gradients. Stable
// for logits of any size, everything in logs: log p = log σ(a) + log σ(b), and
// log(1 − p) = log(σ(−a) + σ(a)·σ(−b)), a log-sum-exp of two log terms (no underflow to 0,
// which lavapipe's flushed denormals would give for logits near ±100).
// One invocation per value; i = gid.x + gid.y * (num_workgroups.x * 256).
//   product_logit       c = log σ(a) + log σ(b) − log(1 − σ(a)σ(b))          u.x = n
//   product_logit_grad  c (+)= e · σ(−x) / (1 − σ(a)σ(b)),  e = dy, x = a (or b when AT_B)

struct Params {
    u: vec4<u32>,
    f: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> e: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

override ACCUMULATE: bool = false;
override AT_B: bool = false;

const WG: u32 = 256u;

// log σ(x) = −softplus(−x).
fn log_sigmoid(x: f32) -> f32 {
    return -(max(-x, 0.0) + log(1.0 + exp(-abs(x))));
}

// log(e^x + e^y).
fn log_add_exp(x: f32, y: f32) -> f32 {
    return max(x, y) + log(1.0 + exp(-abs(x - y)));
}

// log(1 − σ(a)σ(b)) = log(σ(−a) + σ(a)σ(−b)).
fn log_q(a: f32, b: f32) -> f32 {
    return log_add_exp(log_sigmoid(-a), log_sigmoid(a) + log_sigmoid(-b));
}

@compute @workgroup_size(WG)
fn product_logit(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.u.x { return; }
    let x = a[i];
    let z = b[i];
    c[i] = log_sigmoid(x) + log_sigmoid(z) - log_q(x, z);
}

@compute @workgroup_size(WG)
fn product_logit_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.u.x { return; }
    let x = a[i];
    let z = b[i];
    var own = x;
    if AT_B { own = z; }
    let g = e[i] * exp(log_sigmoid(-own) - log_q(x, z));
    if ACCUMULATE { c[i] = c[i] + g; } else { c[i] = g; }
}
