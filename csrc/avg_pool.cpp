// Stride-1 average pooling of float32 NCHW tensors on the CPU, as a custom
// autograd function: the same bits as libtorch's NCHW kernels, without their
// scalar per-pixel loops or the two layout copies (and the zero fill of
// `as_strided`'s backward) that `src/nets/pool.rs` pays for libtorch's
// vectorised channels-last kernels. Written by hand because libtorch has no
// vectorised NCHW average pooling and tch cannot define an autograd node.
//
// The reference sums (libtorch's `cpu_avg_pool2d` and its backward):
// - forward: out[oh][ow] = (0 + in[ih0][iw0] + in[ih0][iw0 + 1] + ... in
//   window order, rows then columns, padding skipped) / divisor, in float;
// - backward: grad_in starts at 0; for each output (oh, ow) in row-major
//   order, grad_out[oh][ow] / divisor is added to every input of its window.
// The loops below keep, for every element, the same operands in the same
// order, vectorised across a row instead of walking one window at a time.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

// Four and eight floats; `load` and `store` of any of them.
typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));

template <class V>
inline V load(const float* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class V>
inline void store(float* p, V v) {
  std::memcpy(p, &v, sizeof v);
}

// out[o][i] = 0 + in[o][i] + in[o][i + 1] + ... + in[o + k - 1][i + k - 1]
// (the k x k window at (o, i), rows then columns), divided by div[o][i] when
// `div` is given; `in` has `in_w` columns, `out` and `div` `w`. `V` holds
// `L` floats: the sums of L neighbouring pixels, each in its own lane.
template <class V, int64_t L>
__attribute__((always_inline)) inline void box_sums_of(const float* in, int64_t in_w, int64_t h, int64_t w,
                                                        int64_t k, const float* div, float* out) {
  for (int64_t o = 0; o < h; ++o) {
    const float* top = in + o * in_w;
    float* dst = out + o * w;
    int64_t i = 0;
    for (; i + L <= w; i += L) {
      V acc = {};
      for (int64_t a = 0; a < k; ++a)
        for (int64_t b = 0; b < k; ++b) acc += load<V>(top + a * in_w + i + b);
      if (div) acc = acc / load<V>(div + o * w + i);
      store(dst + i, acc);
    }
    for (; i < w; ++i) {
      float acc = 0.0f;
      for (int64_t a = 0; a < k; ++a)
        for (int64_t b = 0; b < k; ++b) acc += top[a * in_w + i + b];
      dst[i] = div ? acc / div[o * w + i] : acc;
    }
  }
}

#if defined(__GNUC__) && defined(__x86_64__)
// AVX2's eight lanes where the CPU has them (additions and divisions are
// IEEE's in every width, so the bits do not depend on the choice)
__attribute__((target("avx2"))) void box_sums_avx2(const float* in, int64_t in_w, int64_t h, int64_t w, int64_t k,
                                                    const float* div, float* out) {
  box_sums_of<v8, 8>(in, in_w, h, w, k, div, out);
}

// Set by the tests, to check the four-lane loop on a CPU with AVX2 too.
std::atomic<bool> four_lanes_only{false};

void box_sums(const float* in, int64_t in_w, int64_t h, int64_t w, int64_t k, const float* div, float* out) {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  if (avx2 && !four_lanes_only.load(std::memory_order_relaxed)) return box_sums_avx2(in, in_w, h, w, k, div, out);
  box_sums_of<v4, 4>(in, in_w, h, w, k, div, out);
}
#else
std::atomic<bool> four_lanes_only{false};

void box_sums(const float* in, int64_t in_w, int64_t h, int64_t w, int64_t k, const float* div, float* out) {
  box_sums_of<v4, 4>(in, in_w, h, w, k, div, out);
}
#endif

// `src` (h x w) copied into the middle of `dst` ((h + top + bottom) x (w +
// left + right)), zeros around it. Adding a padded zero to a window's sum
// changes no bit: the sum starts at +0 and so is never -0.
void padded(const float* src, int64_t h, int64_t w, int64_t before, int64_t after, float* dst) {
  const int64_t dw = w + before + after;
  std::fill(dst, dst + (h + before + after) * dw, 0.0f);
  for (int64_t r = 0; r < h; ++r) std::memcpy(dst + (r + before) * dw + before, src + r * w, w * sizeof(float));
}

struct Geometry {
  int64_t k, p;
  bool count_padding;
  int64_t h, w, ho, wo;

  // Rows [lo, hi) of output `o`'s window inside the input (`n`: its
  // extent), and the window's size with the padding counted.
  void window(int64_t o, int64_t n, int64_t& lo, int64_t& hi, int64_t& full) const {
    lo = o - p;
    hi = std::min(lo + k, n + p);
    full = hi - lo;
    lo = std::max<int64_t>(lo, 0);
    hi = std::min(hi, n);
  }

  // Every output pixel's divisor (libtorch's integer `divide_factor`, by
  // which it divides a float), ho x wo.
  std::vector<float> divisors() const {
    std::vector<float> div(ho * wo);
    for (int64_t oh = 0; oh < ho; ++oh) {
      int64_t h0, h1, hfull;
      window(oh, h, h0, h1, hfull);
      for (int64_t ow = 0; ow < wo; ++ow) {
        int64_t w0, w1, wfull;
        window(ow, w, w0, w1, wfull);
        div[oh * wo + ow] = static_cast<float>(count_padding ? hfull * wfull : (h1 - h0) * (w1 - w0));
      }
    }
    return div;
  }
};

// Forward: the input padded by p, its windows summed and divided.
void forward_plane(const Geometry& g, const float* div, const float* x, float* y, float* buf) {
  padded(x, g.h, g.w, g.p, g.p, buf);
  box_sums(buf, g.w + 2 * g.p, g.ho, g.wo, g.k, div, y);
}

// Backward: input pixel (ih, iw) takes grad_out / divisor of the outputs
// (ih + p - a, iw + p - b), which in ascending order are a and b descending;
// with the quotients padded by k - 1 - p on every side, those are the window
// of (ih, iw) in ascending order.
void backward_plane(const Geometry& g, const float* div, const float* gy, float* gx, float* quot, float* buf) {
  for (int64_t i = 0; i < g.ho * g.wo; ++i) quot[i] = gy[i] / div[i];
  const int64_t before = g.k - 1 - g.p;
  padded(quot, g.ho, g.wo, before, before, buf);
  box_sums(buf, g.wo + 2 * before, g.h, g.w, g.k, nullptr, gx);
}

Geometry geometry(const at::Tensor& x, int64_t k, int64_t p, bool count_padding) {
  const int64_t h = x.size(2), w = x.size(3);
  return Geometry{k, p, count_padding, h, w, h + 2 * p - k + 1, w + 2 * p - k + 1};
}

at::Tensor pool_forward(const at::Tensor& input, int64_t k, int64_t p, bool count_padding) {
  const at::Tensor x = input.contiguous();
  const Geometry g = geometry(x, k, p, count_padding);
  const std::vector<float> div = g.divisors();
  at::Tensor y = at::empty({x.size(0), x.size(1), g.ho, g.wo}, x.options());
  const float* xs = x.const_data_ptr<float>();
  float* ys = y.mutable_data_ptr<float>();
  at::parallel_for(0, x.size(0) * x.size(1), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> buf((g.h + 2 * p) * (g.w + 2 * p));
    for (int64_t i = begin; i < end; ++i) forward_plane(g, div.data(), xs + i * g.h * g.w, ys + i * g.ho * g.wo, buf.data());
  });
  return y;
}

at::Tensor pool_backward(const at::Tensor& grad, const Geometry& g, int64_t n, int64_t c) {
  const at::Tensor gy = grad.contiguous();
  const std::vector<float> div = g.divisors();
  at::Tensor gx = at::empty({n, c, g.h, g.w}, gy.options());
  const float* gys = gy.const_data_ptr<float>();
  float* gxs = gx.mutable_data_ptr<float>();
  at::parallel_for(0, n * c, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> quot(g.ho * g.wo), buf((g.h + g.k - 1) * (g.w + g.k - 1));
    for (int64_t i = begin; i < end; ++i)
      backward_plane(g, div.data(), gys + i * g.ho * g.wo, gxs + i * g.h * g.w, quot.data(), buf.data());
  });
  return gx;
}

struct AvgPool : public torch::autograd::Function<AvgPool> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t k, int64_t p,
                            bool count_padding) {
    ctx->save_for_backward({x});
    ctx->saved_data["k"] = k;
    ctx->saved_data["p"] = p;
    ctx->saved_data["count_padding"] = count_padding;
    return pool_forward(x, k, p, count_padding);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const int64_t k = ctx->saved_data["k"].toInt(), p = ctx->saved_data["p"].toInt();
    const bool count_padding = ctx->saved_data["count_padding"].toBool();
    at::Tensor gx;
    if (at::GradMode::is_enabled()) {
      // a gradient that is differentiated again (GraSP's Hessian-vector
      // product): libtorch's own backward, through its channels-last kernel
      // as `pool.rs` runs it elsewhere (the same bits)
      const auto cl = at::MemoryFormat::ChannelsLast;
      gx = at::avg_pool2d_backward(grads[0].contiguous(cl), x.contiguous(cl), {k, k}, {1, 1}, {p, p}, false,
                                   count_padding, std::nullopt)
               .contiguous();
    } else {
      gx = pool_backward(grads[0], geometry(x, k, p, count_padding), x.size(0), x.size(1));
    }
    return {gx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

thread_local std::string last_error;

}  // namespace

extern "C" {

// `k` x `k` stride-1 average pooling of `x` (float32, NCHW, CPU) with zero
// padding `p`; `count_padding`: PyTorch's `count_include_pad`. A new tensor,
// or null with the reason in `rbflex_last_error`.
at::Tensor* rbflex_avg_pool_s1(const at::Tensor* x, int64_t k, int64_t p, int count_padding) {
  try {
    return new at::Tensor(AvgPool::apply(*x, k, p, count_padding != 0));
  } catch (const std::exception& e) {
    last_error = e.what();
    return nullptr;
  }
}

// The reason the last call on this thread returned null.
const char* rbflex_last_error() { return last_error.c_str(); }

// Whether every call takes the four-lane loop (for the tests: both loops
// give the same bits, so other calls meanwhile are unaffected).
void rbflex_avg_pool_four_lanes_only(int on) { four_lanes_only.store(on != 0, std::memory_order_relaxed); }
}
