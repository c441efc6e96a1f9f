// Divergence guard, run at the end of every training step (one workgroup, no readback):
// counts the step, and the first time a task loss or a parameter is not finite records
// (flag, step, task, value) — task = T for a parameter. The host reads the five values when it
// reports or checkpoints.
//   state: [0] steps seen, [1] flag, [2] step, [3] task (or T), [4] value

struct Params {
    u: vec4<u32>, // T, P
    f: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> losses: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> state: array<f32>;
// The parameters four at a time, when P % 4 == 0 (VEC4): a quarter of the loads to scan.
@group(0) @binding(4) var<storage, read> params4: array<vec4<f32>>;

override VEC4: bool = false;

const WG: u32 = 256u;
var<workgroup> bad: array<u32, 256>;

fn finite(x: f32) -> bool {
    // NaN fails every comparison; ±inf exceeds the largest finite f32.
    return abs(x) <= 3.4028234e38;
}

@compute @workgroup_size(WG)
fn check_finite(@builtin(local_invocation_index) t: u32) {
    // The first non-finite parameter this thread sees (index + 1; 0 = none).
    var first = 0u;
    if VEC4 {
        for (var i = t; i < p.u.y / 4u; i += WG) {
            let v = params4[i];
            if first == 0u {
                // The first of the four that is not finite.
                for (var j = 0u; j < 4u; j++) {
                    if first == 0u && !finite(v[j]) { first = 4u * i + j + 1u; }
                }
            }
        }
    } else {
        for (var i = t; i < p.u.y; i += WG) {
            if first == 0u && !finite(params[i]) { first = i + 1u; }
        }
    }
    bad[t] = first;
    workgroupBarrier();
    if t != 0u { return; }
    let step = state[0] + 1.0;
    state[0] = step;
    if state[1] != 0.0 { return; }
    for (var k = 0u; k < p.u.x; k++) {
        if !finite(losses[k]) {
            state[1] = 1.0;
            state[2] = step;
            state[3] = f32(k);
            state[4] = losses[k];
            return;
        }
    }
    for (var k = 0u; k < WG; k++) {
        if bad[k] != 0u {
            state[1] = 1.0;
            state[2] = step;
            state[3] = f32(p.u.x);
            state[4] = params[bad[k] - 1u];
            return;
        }
    }
}
