// onednn::PackedLinear: oneDNN's matmul primitive with packed weights.
#include <mutex>
#include <unordered_map>

#include "models/cpu/onednn.h"

#ifdef CLCA_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace clca::onednn {

#ifdef CLCA_HAVE_DNNL
namespace {

using dnnl::memory;

memory::data_type TypeOf(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32: return memory::data_type::f32;
    case torch::kBFloat16: return memory::data_type::bf16;
    default: return memory::data_type::undef;
  }
}

const dnnl::engine& Engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// The row count the weights' layout is chosen for (docs/MODELS.md: oneDNN's
// matmul picks one layout for every row count ViTs use); a row count that
// wants another runs on an unpacked copy, made when first needed.
constexpr int64_t kLayoutRows = 256;

}  // namespace

struct PackedLinear::Impl {
  int64_t in = 0, out = 0;
  memory::data_type type = memory::data_type::undef;
  Epilogue epilogue = Epilogue::kNone;
  torch::ScalarType dtype = torch::kFloat32;
  torch::Tensor bias;  // float32 [out], or undefined
  memory packed;       // the weight as [in, out], in oneDNN's layout
  mutable torch::Tensor plain;  // [in, out], for row counts the packed layout does not suit

  struct Entry {
    dnnl::matmul primitive;
    bool uses_packed = true;
    memory::desc scratchpad;
  };
  mutable std::mutex mu;
  mutable std::unordered_map<int64_t, std::shared_ptr<const Entry>> entries;

  // A contiguous [in, out] (`transposed` false) or [out, in] (true).
  memory::desc PlainWeights(bool transposed = false) const {
    return memory::desc({in, out}, type, transposed ? memory::format_tag::ba : memory::format_tag::ab);
  }

  // The packed weight reordered into a new contiguous [in, out].
  torch::Tensor Unpack() const {
    torch::Tensor t = torch::empty({in, out}, torch::TensorOptions().dtype(dtype));
    memory dst(PlainWeights(), Engine(), t.data_ptr());
    dnnl::stream stream(Engine());
    dnnl::reorder(packed, dst).execute(stream, const_cast<memory&>(packed), dst);
    stream.wait();
    return t;
  }

  dnnl::matmul::primitive_desc Describe(int64_t rows, const memory::desc& weights) const {
    const memory::desc src({rows, in}, type, memory::format_tag::ab);
    const memory::desc dst({rows, out}, type, memory::format_tag::ab);
    dnnl::post_ops ops;
    if (epilogue == Epilogue::kGelu) {
      ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    } else if (epilogue == Epilogue::kResidual) {
      ops.append_binary(dnnl::algorithm::binary_add, dst);
    }
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (bias.defined()) {
      const memory::desc b({1, out}, memory::data_type::f32, memory::format_tag::ab);
      return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, b, dst), attr, Engine());
    }
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, Engine());
  }

  std::shared_ptr<const Entry> Get(int64_t rows) const {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (auto it = entries.find(rows); it != entries.end()) return it->second;
    }
    auto entry = std::make_shared<Entry>();
    dnnl::matmul::primitive_desc pd;
    try {
      pd = Describe(rows, packed.get_desc());
    } catch (const dnnl::error&) {
      pd = Describe(rows, PlainWeights());
      entry->uses_packed = false;
      std::lock_guard<std::mutex> lock(mu);
      if (!plain.defined()) plain = Unpack();
    }
    entry->primitive = dnnl::matmul(pd);
    entry->scratchpad = pd.scratchpad_desc();
    std::lock_guard<std::mutex> lock(mu);
    // Row counts vary with batch size and keep rate; a server sees a bounded
    // set, but do not let a stray caller grow this without end.
    if (entries.size() >= 512) entries.clear();
    return entries.emplace(rows, std::move(entry)).first->second;
  }
};

PackedLinear::PackedLinear(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackedLinear::~PackedLinear() = default;
Epilogue PackedLinear::epilogue() const { return impl_->epilogue; }
torch::ScalarType PackedLinear::dtype() const { return impl_->dtype; }
int64_t PackedLinear::in_features() const { return impl_->in; }
int64_t PackedLinear::out_features() const { return impl_->out; }
torch::Tensor PackedLinear::Weight() const { return impl_->Unpack().t(); }

std::unique_ptr<PackedLinear> PackedLinear::Create(const torch::Tensor& weight,
                                                   const torch::Tensor& bias, Epilogue epilogue) {
  if (!weight.defined() || weight.dim() != 2 || !weight.device().is_cpu()) return nullptr;
  if (TypeOf(weight.scalar_type()) == memory::data_type::undef) return nullptr;
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != weight.size(0))) return nullptr;
  auto impl = std::make_unique<Impl>();
  impl->out = weight.size(0);
  impl->in = weight.size(1);
  impl->type = TypeOf(weight.scalar_type());
  impl->epilogue = epilogue;
  impl->dtype = weight.scalar_type();
  if (bias.defined()) impl->bias = bias.to(torch::kFloat32).contiguous();
  try {
    const memory::desc any({impl->in, impl->out}, impl->type, memory::format_tag::any);
    const auto pd = impl->Describe(kLayoutRows, any);
    // Either [out, in] contiguous or the transposed view of a contiguous [in, out].
    const bool laid_out = weight.stride(0) == 1 && weight.stride(1) == impl->out;
    const torch::Tensor given = laid_out ? weight : weight.contiguous();
    const memory plain(impl->PlainWeights(/*transposed=*/!laid_out), Engine(), given.data_ptr());
    impl->packed = memory(pd.weights_desc(), Engine());
    dnnl::stream stream(Engine());
    dnnl::reorder(plain, impl->packed).execute(stream, const_cast<memory&>(plain), impl->packed);
    stream.wait();
  } catch (const dnnl::error&) {
    return nullptr;
  }
  return std::unique_ptr<PackedLinear>(new PackedLinear(std::move(impl)));
}

torch::Tensor PackedLinear::operator()(const torch::Tensor& x, const torch::Tensor& residual) const {
  const Impl& p = *impl_;
  TORCH_CHECK(x.size(-1) == p.in, "linear: input has ", x.size(-1), " features, weight ", p.in);
  TORCH_CHECK(x.scalar_type() == p.dtype && x.device().is_cpu(), "linear: input is ",
              x.scalar_type(), ", weight ", p.dtype);
  const torch::Tensor rows = x.reshape({-1, p.in}).contiguous();
  const int64_t m = rows.size(0);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = p.out;
  torch::Tensor y = torch::empty({m, p.out}, x.options());
  if (m == 0) return y.view(shape);
  const auto entry = p.Get(m);
  const dnnl::engine& engine = Engine();
  const memory src({{m, p.in}, p.type, memory::format_tag::ab}, engine, rows.data_ptr());
  const memory dst({{m, p.out}, p.type, memory::format_tag::ab}, engine, y.data_ptr());
  std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
  args[DNNL_ARG_WEIGHTS] =
      entry->uses_packed ? p.packed : memory(p.PlainWeights(), engine, p.plain.data_ptr());
  if (p.bias.defined()) {
    args[DNNL_ARG_BIAS] = memory({{1, p.out}, memory::data_type::f32, memory::format_tag::ab},
                                 engine, p.bias.data_ptr());
  }
  torch::Tensor added;
  if (p.epilogue == Epilogue::kResidual) {
    TORCH_CHECK(residual.defined() && residual.numel() == m * p.out &&
                    residual.scalar_type() == x.scalar_type(),
                "linear: the residual must have the output's shape and type");
    added = residual.reshape({m, p.out}).contiguous();
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] =
        memory({{m, p.out}, p.type, memory::format_tag::ab}, engine, added.data_ptr());
  }
  torch::Tensor scratchpad;
  if (const size_t bytes = entry->scratchpad.get_size(); bytes > 0) {
    scratchpad = torch::empty({static_cast<int64_t>(bytes)}, x.options().dtype(torch::kUInt8));
    args[DNNL_ARG_SCRATCHPAD] = memory(entry->scratchpad, engine, scratchpad.data_ptr());
  }
  dnnl::stream stream(engine);
  entry->primitive.execute(stream, args);
  stream.wait();
  return y.view(shape);
}

#else  // no oneDNN headers

struct PackedLinear::Impl {};
PackedLinear::PackedLinear(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackedLinear::~PackedLinear() = default;
Epilogue PackedLinear::epilogue() const { return Epilogue::kNone; }
torch::ScalarType PackedLinear::dtype() const { return torch::kFloat32; }
int64_t PackedLinear::in_features() const { return 0; }
int64_t PackedLinear::out_features() const { return 0; }
torch::Tensor PackedLinear::Weight() const { TORCH_CHECK(false, "this build has no oneDNN primitives"); }
std::unique_ptr<PackedLinear> PackedLinear::Create(const torch::Tensor&, const torch::Tensor&,
                                                   Epilogue) {
  return nullptr;
}
torch::Tensor PackedLinear::operator()(const torch::Tensor&, const torch::Tensor&) const {
  TORCH_CHECK(false, "this build has no oneDNN primitives");
}

#endif

}  // namespace clca::onednn
