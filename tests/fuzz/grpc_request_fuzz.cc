// libFuzzer target for what the gRPC front-end does with a request's untrusted bytes: the
// message framing (UnaryMessage) and the decoding of every data-plane method's message into
// gateway calls (prepare), then encoding a response from replies (finish).
//
// Input layout: byte 0 picks the method, byte 1 the fake replies' shape, the rest is the
// request body (5-byte gRPC prefix + protobuf) as it arrived in DATA frames. Checked:
//   * framing errors and decoding errors are Status values, never crashes;
//   * every call borrows its key/value/check from the decoded request (nothing dangles: the
//     request is destroyed only after the response is encoded, and ASan watches);
//   * a call's value never exceeds the item limit (prepare refuses larger ones);
//   * finish always yields either a non-OK status or at least one framed message, and each
//     framed message's prefix matches its length.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "frontend/grpc/framing.h"
#include "frontend/grpc/services.h"
#include "topics/topics.h"

namespace {


using namespace cellar;

void CheckFraming(std::string_view out) {
  while (!out.empty()) {
    FUZZ_CHECK(out.size() >= grpc::kPrefixBytes);
    FUZZ_CHECK(out[0] == 0);
    const uint32_t len = *grpc::DeclaredLength(out);
    FUZZ_CHECK(out.size() - grpc::kPrefixBytes >= len);
    out.remove_prefix(grpc::kPrefixBytes + len);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  auto methods = grpc::AllMethods();
  const grpc::Method& m = methods[data[0] % methods.size()];
  const uint8_t shape = data[1];
  std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);

  auto message = grpc::UnaryMessage(body);
  if (!message.ok()) {
    FUZZ_CHECK(!message.status().message().empty());
    return 0;
  }
  // Control calls need the control plane.
  if (m.kind != grpc::MethodKind::kData && m.kind != grpc::MethodKind::kSubscribe) return 0;

  // Publish checks its topic name with the topics (no loop runs: nothing is delivered; no
  // admission is set, so no rate or size limit applies).
  static boost::asio::io_context io;
  static topics::Topics topics({&io}, topics::Options{});
  grpc::ServiceContext ctx;
  ctx.max_item_bytes = 1024;
  ctx.max_request_bytes = 4096;
  ctx.topics = &topics;
  grpc::Stream s;
  s.cache_id = 7;
  if (m.decode != nullptr) {  // Pubsub: decoded (and the cache named) before prepare
    if (!m.decode(s, *message).ok()) return 0;
    if (m.kind == grpc::MethodKind::kSubscribe) {
      const grpc::SubscribeArgs args = grpc::SubscribeRequestOf(s);
      FUZZ_CHECK(!args.topic.empty());
      return 0;
    }
  }
  std::vector<gateway::Call> calls;
  Status st = m.prepare(ctx, s, *message, calls, /*now_ms=*/1'700'000'000'000);
  if (!st.ok()) return 0;
  s.num_calls = static_cast<uint32_t>(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    gateway::Call& c = calls[i];
    FUZZ_CHECK(c.req.cache_id == 7);
    FUZZ_CHECK(c.req.value.size() <= ctx.max_item_bytes);
    // Fake shard replies of several shapes, including a failed call.
    const uint8_t bits = static_cast<uint8_t>(shape >> (i % 8));
    c.reply.found = bits & 1;
    c.reply.integer = (bits & 2) ? 1 : ((bits & 4) ? -2 : -1);
    c.reply.value = (bits & 8) ? "none" : std::string(c.req.key);
    if (shape == 0xFF && i == calls.size() - 1) c.reply.status = Status(Code::kNotFound);
  }
  m.finish(ctx, s, calls.data());
  FUZZ_CHECK(s.status.code != grpc::GrpcCode::kOk || !s.out.empty() || calls.empty());
  CheckFraming(s.out);
  return 0;
}
