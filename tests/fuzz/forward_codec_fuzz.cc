// libFuzzer target for the frames nodes of a fleet exchange (gateway/forward_codec.h): calls
// forwarded to a node, and the replies it sends back. Whatever a peer (or a stray connection
// past the hello) sends must decode or be refused whole, never crash or over-allocate. Checked:
//   * a calls frame that decodes encodes again to exactly the same bytes (nothing dropped or
//     invented: every field and argument survives), deadlines aside (re-based on the clock);
//   * a replies frame that decodes into n calls encodes again to the same bytes.
// Byte 0: which decoder (even: calls, odd: replies, with byte 0 / 2 calls expected, at most 64).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "gateway/forward_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cellar::gateway;
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string frame(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((mode & 1) == 0) {
    auto d = DecodeCalls(frame, /*now_ms=*/1000);
    if (d == nullptr) return 0;
    std::vector<uint32_t> all(d->batch.calls.size());
    for (uint32_t i = 0; i < all.size(); ++i) all[i] = i;
    // Deadlines travel as time left: with the same clock on both sides they come back as
    // sent, except "0 left", which the decoder turns into 1 ms (a deadline, not none).
    std::string again;
    EncodeCalls(d->batch, all, /*now_ms=*/1000, again);
    auto d2 = DecodeCalls(again, 1000);
    FUZZ_CHECK(d2 != nullptr);
    FUZZ_CHECK(d2->batch.calls.size() == d->batch.calls.size());
    std::string third;
    EncodeCalls(d2->batch, all, 1000, third);
    FUZZ_CHECK(third == again);
  } else {
    Batch b;
    b.calls.resize(mode / 2 % 65);
    std::vector<uint32_t> idx(b.calls.size());
    for (uint32_t i = 0; i < idx.size(); ++i) idx[i] = i;
    if (!DecodeReplies(frame, b, idx)) return 0;
    std::string again;
    EncodeReplies(b.calls, again);
    FUZZ_CHECK(again == frame);
  }
  return 0;
}
