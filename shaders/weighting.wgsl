// Task weighting and gradient combination on the GPU.
//   gram         m[i*T+j] = <G_i, G_j> for the T rows of G (row stride p.u.z); one workgroup per pair i <= j;
//                with p.u.w > 0, the top-left block of a matrix with rows p.u.w long
//   combine      out[k] = sum_t c[t] * G[t*stride + k]
//   graddrop     GradDrop as LibMTL (Chen et al., NeurIPS 2020) on the representation's gradients G_t ([B, D]):
//                per column d, s_td = sum_b G_t[b,d] * sign(x[b,d]) (x the representation), purity
//                P_d = (1 + sum_t s_td / (sum_t |s_td| + 1e-7)) / 2 against a hashed uniform u_d (seed p.u.w);
//                task t's column kept when (P_d > u_d and s_td > 0) or (P_d < u_d and s_td < 0);
//                out[b,d] = sum_t G_t[b,d] * (leak + (1 - leak) * kept_td)
//   scale_task   x[k] *= w[p.u.y] for k < n   (a task's logit gradient by its weight)
//   lookahead    theta[k] = saved[k] - lr * G_t[k] / w[t] (0 where w[t] = 0): the shared parameters after task t's
//                own SGD step (TAG's lookahead), its gradient G_t scaled back by its loss weight
//   mix_rows     Y_t = m[t] * Y_t + m[T+t] * G_t for the T rows G_t of a [2T, stride] buffer and the T rows
//                Y_t after them (DB-MTL's and MoCo's moving averages of each task's gradient)
//   excess_rows  A_t += G_t^2 elementwise (A_t: the rows after G's, as in mix_rows), then
//                w[t] = sum_k G_tk^2 / sqrt(A_tk + 1e-7)   (ExcessMTL's AdaGrad-scaled excess risk); one workgroup per task
//   uw_weights   w[t] = exp(-s[t]) / 2                           (Kendall et al., LibMTL UW)
//   uw_grad      gs[t] = (k - exp(-s[t]) * L[t]) / 2             (d/ds of (e^-s L + s) / 2; k = p.f.x:
//                1, or a rank's share of the constant term in data-parallel training)
//   gls_weights  w[t] = (prod L)^(1/T) / (T * L[t])              (d/dL_t of the geometric mean)
//   famo         FAMO (Liu et al., NeurIPS 2023; LibMTL FAMO), in two halves: the weights z = softmax(xi),
//                c = sum z/D, w[t] = z[t] / (c * D[t]), D = L - L_min + 1e-8 (keeping L); after the update and a
//                forward pass on the same batch, xi's Adam step on delta = log D_before - log D_after.
//                State: xi, m, v (T each), the losses before (T), Adam's step count (1).
// Requires workgroup_sum.wgsl (prepended by Hydra).

struct Params {
    u: vec4<u32>, // gram/combine/graddrop: T, P, stride, seed; scale_task: n, task; uw/gls/famo: T
    f: vec4<f32>, // famo: lr, weight decay, beta1, beta2
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> out2: array<f32>;

const WG: u32 = 256u;
// G = a (rows of length P, stride p.u.z); m = out.
@compute @workgroup_size(WG)
fn gram(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let T = p.u.x;
    let P = p.u.y;
    let S = p.u.z;
    // Workgroup id -> pair (i, j), i <= j, row-major over the upper triangle.
    var k = wid.x;
    var i = 0u;
    loop {
        let row = T - i;
        if k < row { break; }
        k -= row;
        i += 1u;
    }
    let j = i + k;
    var s = 0.0;
    for (var e = t; e < P; e += WG) { s += a[i * S + e] * a[j * S + e]; }
    let v = workgroup_sum(t, s);
    // Row length of m: T, or p.u.w when m is a larger matrix whose top-left block this fills.
    let ld = select(T, p.u.w, p.u.w > 0u);
    if t == 0u {
        out[i * ld + j] = v;
        out[j * ld + i] = v;
    }
}

// G = a, c = b, result = out.
@compute @workgroup_size(WG)
fn combine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = gid.x + gid.y * nwg.x * WG;
    if k >= p.u.y { return; }
    var s = 0.0;
    for (var t = 0u; t < p.u.x; t++) { s += b[t] * a[t * p.u.z + k]; }
    out[k] = s;
}

fn hash_uniform(k: u32, seed: u32) -> f32 {
    var h = k * 747796405u + seed * 2891336453u + 1u;
    h = ((h >> ((h >> 28u) + 4u)) ^ h) * 277803737u;
    h = (h >> 22u) ^ h;
    return f32(h >> 8u) / 16777216.0;
}

// G = a (u: T, B*D, stride, seed), x = b, out = out; f.x: leak, f.y: D (its bits).
@compute @workgroup_size(WG)
fn graddrop(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let d = gid.x + gid.y * nwg.x * WG;
    let D = bitcast<u32>(p.f.y);
    if d >= D { return; }
    let T = p.u.x;
    let B = p.u.y / D;
    var sum = 0.0;
    var abs_sum = 0.0;
    for (var t = 0u; t < T; t++) {
        var s = 0.0;
        for (var r = 0u; r < B; r++) { s += a[t * p.u.z + r * D + d] * sign(b[r * D + d]); }
        sum += s;
        abs_sum += abs(s);
    }
    let purity = 0.5 * (1.0 + sum / (abs_sum + 1e-7));
    let u = hash_uniform(d, p.u.w);
    for (var r = 0u; r < B; r++) { out[r * D + d] = 0.0; }
    for (var t = 0u; t < T; t++) {
        var s = 0.0;
        for (var r = 0u; r < B; r++) { s += a[t * p.u.z + r * D + d] * sign(b[r * D + d]); }
        let kept = (purity > u && s > 0.0) || (purity < u && s < 0.0);
        let m = p.f.x + (1.0 - p.f.x) * select(0.0, 1.0, kept);
        for (var r = 0u; r < B; r++) { out[r * D + d] += a[t * p.u.z + r * D + d] * m; }
    }
}

// saved = a, G_t = b (a view of its row), theta = out, w = out2 (u: n, t; f.x: lr).
@compute @workgroup_size(WG)
fn lookahead(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = gid.x + gid.y * nwg.x * WG;
    if k >= p.u.x { return; }
    let w = out2[p.u.y];
    let g = select(0.0, b[k] / w, w != 0.0);
    out[k] = a[k] - p.f.x * g;
}

// m = a, rows = out (u: T, P, stride).
@compute @workgroup_size(WG)
fn mix_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = gid.x + gid.y * nwg.x * WG;
    let T = p.u.x;
    if k >= p.u.y { return; }
    for (var t = 0u; t < T; t++) {
        let y = (T + t) * p.u.z + k;
        out[y] = a[t] * out[y] + a[T + t] * out[t * p.u.z + k];
    }
}

// rows = out (u: T, P, stride), w = out2.
@compute @workgroup_size(WG)
fn excess_rows(@builtin(local_invocation_index) i: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let T = p.u.x;
    let t = wid.x;
    var s = 0.0;
    for (var e = i; e < p.u.y; e += WG) {
        let g = out[t * p.u.z + e];
        let at = (T + t) * p.u.z + e;
        let acc = out[at] + g * g;
        out[at] = acc;
        s += g * g / sqrt(acc + 1e-7);
    }
    let v = workgroup_sum(i, s);
    if i == 0u { out2[t] = v; }
}

// w = a, x = out.
@compute @workgroup_size(WG)
fn scale_task(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = gid.x + gid.y * nwg.x * WG;
    if k < p.u.x { out[k] = out[k] * a[p.u.y]; }
}

// s = a, weights = out.
@compute @workgroup_size(64)
fn uw_weights(@builtin(local_invocation_index) t: u32) {
    if t < p.u.x { out[t] = 0.5 * exp(-a[t]); }
}

// s = a, losses = b, grad of s = out.
@compute @workgroup_size(64)
fn uw_grad(@builtin(local_invocation_index) t: u32) {
    if t < p.u.x { out[t] = 0.5 * (p.f.x - exp(-a[t]) * b[t]); }
}

// IMTL-L (Liu et al., ICLR 2021): losses scaled as e^s·L − s. s = a, weights = out.
@compute @workgroup_size(64)
fn imtl_weights(@builtin(local_invocation_index) t: u32) {
    if t < p.u.x { out[t] = exp(a[t]); }
}

// s = a, losses = b, grad of s = out: ∂(e^s·L − s)/∂s.
@compute @workgroup_size(64)
fn imtl_grad(@builtin(local_invocation_index) t: u32) {
    if t < p.u.x { out[t] = exp(a[t]) * b[t] - 1.0; }
}

// STCH (Lin et al., ICML 2024), as LibMTL: losses = b, weights = out, state = out2: the
// warm-up epoch's loss sums[T], their count, then the current epoch (written by the host).
// Before the warm-up epoch's end the weights are those of Σ log L_t, 1/L_t (summing the losses
// during the last warm-up epoch); after it, with z = the sums' mean (the nadir point) and
// ℓ_t = log(L_t/z_t + 1e-20), those of μ·T·log Σ exp(ℓ_t/μ): T·softmax(ℓ/μ)_t / (L_t + 1e-20·z_t).
// u.x = T, u.y = warm-up epochs, f.x = μ.
@compute @workgroup_size(1)
fn stch() {
    let T = p.u.x;
    let warm = f32(p.u.y);
    let mu = p.f.x;
    let epoch = out2[T + 1u];
    if epoch <= warm {
        for (var t = 0u; t < T; t++) {
            out[t] = 1.0 / (b[t] + 1e-20);
            if epoch == warm { out2[t] += b[t]; }
        }
        if epoch == warm { out2[T] += 1.0; }
        return;
    }
    let count = max(out2[T], 1.0);
    var mx = -3.4e38;
    for (var t = 0u; t < T; t++) { mx = max(mx, log(b[t] / (out2[t] / count) + 1e-20)); }
    var s = 0.0;
    for (var t = 0u; t < T; t++) { s += exp((log(b[t] / (out2[t] / count) + 1e-20) - mx) / mu); }
    for (var t = 0u; t < T; t++) {
        let z = out2[t] / count;
        let e = exp((log(b[t] / z + 1e-20) - mx) / mu) / s;
        out[t] = f32(T) * e / (b[t] + 1e-20 * z);
    }
}

// losses = b, weights = out.
@compute @workgroup_size(64)
fn gls_weights(@builtin(local_invocation_index) t: u32) {
    let T = p.u.x;
    if t >= T { return; }
    var log_prod = 0.0;
    for (var i = 0u; i < T; i++) { log_prod += log(max(b[i], 1e-20)); }
    let g = exp(log_prod / f32(T));
    out[t] = g / (f32(T) * max(b[t], 1e-20));
}

// min losses = a, losses = b, weights = out, state = out2: xi[T], m[T], v[T], prev[T], step.
// p.u.y = 0: the step's weights from xi and its losses, which are kept as prev;
// p.u.y = 1: after the update and a forward pass on the same batch (LibMTL's update_w), one Adam
// step of xi along J_softmax(xi)^T delta, delta = log(prev - min + 1e-8) - log(L - min + 1e-8).
@compute @workgroup_size(1)
fn famo() {
    let T = p.u.x;
    var zmax = out2[0];
    for (var t = 1u; t < T; t++) { zmax = max(zmax, out2[t]); }
    var zs = 0.0;
    for (var t = 0u; t < T; t++) { zs += exp(out2[t] - zmax); }
    if p.u.y == 0u {
        var c = 0.0;
        for (var t = 0u; t < T; t++) { c += (exp(out2[t] - zmax) / zs) / (b[t] - a[t] + 1e-8); }
        for (var t = 0u; t < T; t++) {
            let z = exp(out2[t] - zmax) / zs;
            out[t] = z / (c * (b[t] - a[t] + 1e-8));
            out2[3u * T + t] = b[t];
        }
        return;
    }
    let lr = p.f.x;
    let wd = p.f.y;
    let b1 = p.f.z;
    let b2 = p.f.w;
    let n = out2[4u * T] + 1.0;
    var zd = 0.0;
    for (var t = 0u; t < T; t++) {
        let delta = log(out2[3u * T + t] - a[t] + 1e-8) - log(b[t] - a[t] + 1e-8);
        zd += exp(out2[t] - zmax) / zs * delta;
    }
    for (var t = 0u; t < T; t++) {
        let z = exp(out2[t] - zmax) / zs;
        let delta = log(out2[3u * T + t] - a[t] + 1e-8) - log(b[t] - a[t] + 1e-8);
        let g = z * (delta - zd) + wd * out2[t];
        let m = b1 * out2[T + t] + (1.0 - b1) * g;
        let v = b2 * out2[2u * T + t] + (1.0 - b2) * g * g;
        out2[T + t] = m;
        out2[2u * T + t] = v;
        let mh = m / (1.0 - pow(b1, n));
        let vh = v / (1.0 - pow(b2, n));
        out2[t] = out2[t] - lr * mh / (sqrt(vh) + 1e-8);
    }
    out2[4u * T] = n;
}
