// Fused per-task loss: in one dispatch (one workgroup) computes, over the batch rows whose
// label is present (mask != 0), the mean loss into losses[task] and the gradient of
// weights[task] * loss with respect to the logits into grad. Rows without a label get a zero
// gradient; a batch without any label gives loss 0 and a zero gradient. With COUNTED, a
// positive counts[task] replaces the batch's own count of labelled rows as the mean's
// denominator: in data-parallel training each rank holds a slice of the global batch and
// divides by the global count, so the ranks' losses and gradients sum to the global ones.
//   logits [B, C]  labels [B] (a value, a 0/1 label, or a class index)  mask [B]
// KIND: 0 mse, 1 l1, 2 huber (delta p.f.x), 3 bce on logits, 4 softmax cross-entropy (C classes).
// Numerically stable: softplus and log-sum-exp forms, finite for logits of +-100 and beyond.
// Requires workgroup_sum.wgsl (prepended by Hydra).

struct Params {
    u: vec4<u32>, // B, C, task, unused
    f: vec4<f32>, // huber delta, unused...
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> weights: array<f32>;
@group(0) @binding(5) var<storage, read_write> grad: array<f32>;
@group(0) @binding(6) var<storage, read_write> losses: array<f32>;
// Per task, the global batch's labelled rows (0: the batch's own); read only with COUNTED.
@group(0) @binding(7) var<storage, read> counts: array<f32>;

override KIND: u32 = 0u;
override COUNTED: bool = false;
const WG: u32 = 256u;

fn softplus(x: f32) -> f32 {
    return max(x, 0.0) + log(1.0 + exp(-abs(x)));
}

fn sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    let r = 1.0 / (1.0 + e);
    return select(e * r, r, x >= 0.0);
}

// Loss of row r, and writes its gradient scaled by `scale`.
fn row(r: u32, scale: f32) -> f32 {
    let C = p.u.y;
    let base = r * C;
    let y = labels[r];
    switch KIND {
        case 0u: {
            let d = logits[base] - y;
            grad[base] = scale * 2.0 * d;
            return d * d;
        }
        case 1u: {
            let d = logits[base] - y;
            grad[base] = scale * sign(d);
            return abs(d);
        }
        case 2u: {
            let d = logits[base] - y;
            let delta = p.f.x;
            if abs(d) <= delta {
                grad[base] = scale * d;
                return 0.5 * d * d;
            }
            grad[base] = scale * delta * sign(d);
            return delta * (abs(d) - 0.5 * delta);
        }
        case 3u: {
            let x = logits[base];
            grad[base] = scale * (sigmoid(x) - y);
            return softplus(x) - x * y;
        }
        default: {
            let label = u32(y);
            var mx = logits[base];
            for (var c = 1u; c < C; c++) { mx = max(mx, logits[base + c]); }
            var s = 0.0;
            for (var c = 0u; c < C; c++) { s += exp(logits[base + c] - mx); }
            let lse = mx + log(s);
            for (var c = 0u; c < C; c++) {
                let prob = exp(logits[base + c] - lse);
                grad[base + c] = scale * (prob - select(0.0, 1.0, c == label));
            }
            return lse - logits[base + label];
        }
    }
}

@compute @workgroup_size(WG)
fn task_loss(@builtin(local_invocation_index) t: u32) {
    let B = p.u.x;
    let C = p.u.y;
    var cnt = 0.0;
    for (var r = t; r < B; r += WG) { cnt += select(0.0, 1.0, mask[r] != 0.0); }
    var n = workgroup_sum(t, cnt);
    if COUNTED && counts[p.u.z] > 0.0 { n = counts[p.u.z]; }
    let w = weights[p.u.z];
    let scale = w / max(n, 1.0);
    var acc = 0.0;
    for (var r = t; r < B; r += WG) {
        if mask[r] != 0.0 {
            acc += row(r, scale);
        } else {
            for (var c = 0u; c < C; c++) { grad[r * C + c] = 0.0; }
        }
    }
    let total = workgroup_sum(t, acc);
    if t == 0u { losses[p.u.z] = total / max(n, 1.0); }
}
