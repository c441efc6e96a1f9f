// Reductions.
//   col_sum   out[c] (+)= sum_r x[r * C + c]          x is [R, C] (bias gradients); one thread a column
//   col_sum4  the same, four columns a thread read four at a time (C % 4 == 0), small workgroups
//             so that a few hundred columns still spread over every core; same sums, same order
//   sum       out[0] (+)= sum_i x[i]
//   sq_norm   out[0] (+)= sum_i x[i]^2
//   dot       out[0] (+)= sum_i x[i] * y[i]
// sum, sq_norm and dot run as one workgroup: strided partial sums, then a tree in workgroup memory.

struct Params {
    u: vec4<u32>, // col_sum: R, C; others: n
    f: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> out4: array<vec4<f32>>;

override ACCUMULATE: bool = false;

const WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(WG)
fn col_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
    let R = p.u.x;
    let C = p.u.y;
    let c = gid.x;
    if c >= C { return; }
    var s = 0.0;
    for (var r = 0u; r < R; r++) { s += x[r * C + c]; }
    if ACCUMULATE { s += out[c]; }
    out[c] = s;
}

const WG_COLS: u32 = 8u;

@compute @workgroup_size(WG_COLS)
fn col_sum4(@builtin(global_invocation_id) gid: vec3<u32>) {
    let R = p.u.x;
    let C4 = p.u.y / 4u;
    let c = gid.x;
    if c >= C4 { return; }
    var s = vec4<f32>(0.0);
    for (var r = 0u; r < R; r++) { s += x4[r * C4 + c]; }
    if ACCUMULATE { s += out4[c]; }
    out4[c] = s;
}

fn finish(t: u32, v: f32) {
    partial[t] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if t < s { partial[t] += partial[t + s]; }
        workgroupBarrier();
    }
    if t == 0u {
        var r = partial[0];
        if ACCUMULATE { r += out[0]; }
        out[0] = r;
    }
}

@compute @workgroup_size(WG)
fn sum(@builtin(local_invocation_index) t: u32) {
    var s = 0.0;
    for (var i = t; i < p.u.x; i += WG) { s += x[i]; }
    finish(t, s);
}

@compute @workgroup_size(WG)
fn sq_norm(@builtin(local_invocation_index) t: u32) {
    var s = 0.0;
    for (var i = t; i < p.u.x; i += WG) { let v = x[i]; s += v * v; }
    finish(t, s);
}

@compute @workgroup_size(WG)
fn dot(@builtin(local_invocation_index) t: u32) {
    var s = 0.0;
    for (var i = t; i < p.u.x; i += WG) { s += x[i] * y[i]; }
    finish(t, s);
}
