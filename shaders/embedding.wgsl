// Embedding lookups and their deterministic gradient. Ids and the inverse index arrive as
// f32 whole numbers (exact below 2^24) in the batch buffer. One invocation per output value;
// the grid is 2-D so the count may exceed 65535 * 256: i = gid.x + gid.y * (num_workgroups.x * 256).
//   gather   c[r, d] = a[b[r], d]                                  a = table [V, D], b = ids [B]; u = (B·D, D, V)
//   scatter  c[v, d] (+)= Σ_{j in b[v]..b[v+1]} a[e[j], d]         a = dy [B, D], b = offsets [V + 1],
//                                                                  e = order [B]; u = (V·D, D)
// The scatter sums each table row's lookups in the inverse index's order, one invocation per
// table value: no atomics, the same bits on every run. Rows nobody looked up get zero.

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

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.u.x { return; }
    let dim = p.u.y;
    let r = i / dim;
    // An index past the table reads its last row (the host never sends one).
    let v = min(u32(b[r]), p.u.z - 1u);
    c[i] = a[v * dim + i % dim];
}

@compute @workgroup_size(WG)
fn scatter(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.u.x { return; }
    let dim = p.u.y;
    let v = i / dim;
    let d = i % dim;
    let start = u32(b[v]);
    let end = u32(b[v + 1u]);
    var s = 0.0;
    for (var j = start; j < end; j++) {
        s += a[u32(e[j]) * dim + d];
    }
    if ACCUMULATE { c[i] = c[i] + s; } else { c[i] = s; }
}
