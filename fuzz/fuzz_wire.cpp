// libFuzzer harness: the wire decoder, the first code every network byte reaches.
//
// Property checked beyond "no crash": whatever decode() accepts, encode() writes back in a
// form decode() accepts again, so a message the server relays or logs can never become
// undecodable. Only WireError values may come out of decode(); any exception is a finding.
#include "sfn/wire/wire.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  sfn::DecodeResult first = sfn::decode(data, size);
  if (!first) return 0;
  sfn::DecodeResult again = sfn::decode(sfn::encode(first.message()));
  if (!again) std::abort();  // re-encoding an accepted message must round-trip
  if (again.message().index() != first.message().index()) std::abort();
  return 0;
}
