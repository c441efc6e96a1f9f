// C[M,N] = op(A)·op(B) [+ C] [+ bias[N]] [-> activation], any M, N, K >= 1.
// A is [M,K], or [K,M] when TRANS_A; B is [K,N], or [N,K] when TRANS_B (nn.Linear's weight).
// Two variants of one kernel, chosen by entry point, both 4x4 outputs per invocation held in
// registers and loaded four at a time:
//   matmul        barrier-free register blocking: what llvmpipe (lavapipe) wants
//   matmul_tiled  workgroup-memory tiles of (4*WG_Y) x TILE_K and TILE_K x (4*WG_X): what GPUs want
// Requires activation.wgsl (prepended by Hydra).

struct Params {
    u: vec4<u32>, // M, N, K, unused
    f: vec4<f32>, // activation slope, unused...
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
// The same A and B seen four floats at a time, used when rows are 16-byte aligned
// (VEC_A: K % 4 == 0 for A [M, K]; VEC_B: N % 4 == 0 for B [K, N], or K % 4 == 0 for a
// transposed B [N, K]). Otherwise a dummy is bound and never read. (A vectorised transposed-A
// path leaked memory on every dispatch under lavapipe, Mesa 22.3, and was taken out.)
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override ACT: u32 = 0u;
override VEC_A: bool = false;
override VEC_B: bool = false;
override WG_X: u32 = 8u;
override WG_Y: u32 = 8u;

fn a_at(m: u32, k: u32) -> f32 {
    if TRANS_A { return a[k * p.u.x + m]; }
    return a[m * p.u.z + k];
}

fn b_at(k: u32, n: u32) -> f32 {
    if TRANS_B { return b[n * p.u.z + k]; }
    return b[k * p.u.y + n];
}

// Four consecutive k of row m of op(A).
fn a_row4(m: u32, k: u32) -> vec4<f32> {
    if TRANS_A {
        let s = p.u.x;
        return vec4<f32>(a[k * s + m], a[(k + 1u) * s + m], a[(k + 2u) * s + m], a[(k + 3u) * s + m]);
    }
    let i = m * p.u.z + k;
    if VEC_A && !TRANS_A { return a4[i >> 2u]; }
    return vec4<f32>(a[i], a[i + 1u], a[i + 2u], a[i + 3u]);
}

// Four consecutive n of row k of op(B).
fn b_row4(k: u32, n: u32) -> vec4<f32> {
    if TRANS_B {
        let s = p.u.z;
        return vec4<f32>(b[n * s + k], b[(n + 1u) * s + k], b[(n + 2u) * s + k], b[(n + 3u) * s + k]);
    }
    let i = k * p.u.y + n;
    if VEC_B { return b4[i >> 2u]; }
    return vec4<f32>(b[i], b[i + 1u], b[i + 2u], b[i + 3u]);
}

// Four consecutive k of column n of op(B) when B is transposed and vectorised: B[n, k..k+4].
fn bt_col4(k: u32, n: u32) -> vec4<f32> {
    return b4[(n * p.u.z + k) >> 2u];
}

fn store(m: u32, n: u32, v: f32) {
    let idx = m * p.u.y + n;
    var r = v;
    if ACCUMULATE { r += c[idx]; }
    if HAS_BIAS { r += bias[n]; }
    c[idx] = act_apply(ACT, r, p.f.x);
}

fn store_block(m0: u32, n0: u32, acc: array<vec4<f32>, 4>) {
    let M = p.u.x;
    let N = p.u.y;
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + i;
        if m >= M { break; }
        let row = acc[i];
        for (var j = 0u; j < 4u; j++) {
            if n0 + j < N { store(m, n0 + j, row[j]); }
        }
    }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let M = p.u.x;
    let N = p.u.y;
    let K = p.u.z;
    let m0 = gid.y * 4u;
    let n0 = gid.x * 4u;
    if m0 >= M || n0 >= N { return; }
    // Rows and columns past the edge read a valid neighbour; their results are not stored.
    let mr = vec4<u32>(m0, min(m0 + 1u, M - 1u), min(m0 + 2u, M - 1u), min(m0 + 3u, M - 1u));
    let full_n = n0 + 4u <= N;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var k = 0u;
    if full_n && TRANS_B && VEC_B {
        // B stored [N, K]: load four columns of op(B) along k and take dot products.
        for (; k + 4u <= K; k += 4u) {
            let c0 = bt_col4(k, n0);
            let c1 = bt_col4(k, n0 + 1u);
            let c2 = bt_col4(k, n0 + 2u);
            let c3 = bt_col4(k, n0 + 3u);
            for (var i = 0u; i < 4u; i++) {
                let av = a_row4(mr[i], k);
                acc[i] += vec4<f32>(dot(av, c0), dot(av, c1), dot(av, c2), dot(av, c3));
            }
        }
    } else if full_n {
        for (; k + 4u <= K; k += 4u) {
            let b0 = b_row4(k, n0);
            let b1 = b_row4(k + 1u, n0);
            let b2 = b_row4(k + 2u, n0);
            let b3 = b_row4(k + 3u, n0);
            for (var i = 0u; i < 4u; i++) {
                let av = a_row4(mr[i], k);
                acc[i] += av.x * b0 + av.y * b1 + av.z * b2 + av.w * b3;
            }
        }
    }
    let nc = vec4<u32>(n0, min(n0 + 1u, N - 1u), min(n0 + 2u, N - 1u), min(n0 + 3u, N - 1u));
    for (; k < K; k++) {
        let bv = vec4<f32>(b_at(k, nc.x), b_at(k, nc.y), b_at(k, nc.z), b_at(k, nc.w));
        for (var i = 0u; i < 4u; i++) {
            acc[i] += a_at(mr[i], k) * bv;
        }
    }
    store_block(m0, n0, acc);
}

const TILE_K: u32 = 16u;
const TILE_MAX: u32 = 64u; // 4 * WG_X and 4 * WG_Y must not exceed this
var<workgroup> tile_a: array<f32, 1024>; // [TILE_K][TILE_MAX], k-major
var<workgroup> tile_b: array<f32, 1024>; // [TILE_K][TILE_MAX]

@compute @workgroup_size(WG_X, WG_Y, 1)
fn matmul_tiled(
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let M = p.u.x;
    let N = p.u.y;
    let K = p.u.z;
    let tm = 4u * WG_Y;
    let tn = 4u * WG_X;
    let threads = WG_X * WG_Y;
    let t = lid.y * WG_X + lid.x;
    let bm = wid.y * tm;
    let bn = wid.x * tn;
    var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k0 = 0u; k0 < K; k0 += TILE_K) {
        for (var e = t; e < TILE_K * tm; e += threads) {
            let kk = e / tm;
            let mm = e % tm;
            let gm = bm + mm;
            let gk = k0 + kk;
            var v = 0.0;
            if gm < M && gk < K { v = a_at(gm, gk); }
            tile_a[kk * TILE_MAX + mm] = v;
        }
        for (var e = t; e < TILE_K * tn; e += threads) {
            let kk = e / tn;
            let nn = e % tn;
            let gn = bn + nn;
            let gk = k0 + kk;
            var v = 0.0;
            if gn < N && gk < K { v = b_at(gk, gn); }
            tile_b[kk * TILE_MAX + nn] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TILE_K; kk++) {
            let ai = kk * TILE_MAX + lid.y * 4u;
            let bi = kk * TILE_MAX + lid.x * 4u;
            let av = vec4<f32>(tile_a[ai], tile_a[ai + 1u], tile_a[ai + 2u], tile_a[ai + 3u]);
            let bv = vec4<f32>(tile_b[bi], tile_b[bi + 1u], tile_b[bi + 2u], tile_b[bi + 3u]);
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
        }
        workgroupBarrier();
    }
    let m0 = bm + lid.y * 4u;
    let n0 = bn + lid.x * 4u;
    if m0 < M && n0 < N { store_block(m0, n0, acc); }
}
