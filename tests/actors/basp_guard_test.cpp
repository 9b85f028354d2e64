// Issue 14: a served stage against hostile peers. A header announcing a 4 GiB payload is
// refused before anything is reserved (and the stage keeps serving others); a client's
// connect against a peer that accepts TCP and never completes the handshake ends within its
// timeout instead of hanging.
#include "actors/basp_guard.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "actors/remote_stage.h"
#include "actors/remote_wire.h"

namespace pyflame_rt {
namespace {

using namespace std::chrono_literals;

unsigned char* header(unsigned char* h, unsigned char op, uint32_t payload) {
  std::memset(h, 0, kBaspHeaderSize);
  h[0] = op;
  h[4] = static_cast<unsigned char>(payload >> 24);
  h[5] = static_cast<unsigned char>(payload >> 16);
  h[6] = static_cast<unsigned char>(payload >> 8);
  h[7] = static_cast<unsigned char>(payload);
  return h;
}

TEST(BaspGuardTest, HeaderCheckRefusesUnknownOperationsAndHugePayloads) {
  unsigned char h[kBaspHeaderSize];
  uint32_t len = 0;
  EXPECT_TRUE(check_basp_header(header(h, 0x01, 1000), kBaspHeaderSize, 4096, &len).ok());
  EXPECT_EQ(len, 1000u);
  EXPECT_EQ(check_basp_header(header(h, 0x02, 0xfffffff0u), kBaspHeaderSize, 4096, &len).code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(check_basp_header(header(h, 0x07, 0), kBaspHeaderSize, 4096, &len).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(check_basp_header(h, 31, 4096, &len).code(), StatusCode::kInvalidArgument);
}

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};  // every wait in the test is bounded
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

StageFn add_one() {
  return [](const Frame& in) -> Expected<Frame> {
    Frame out = in;
    Tensor t(DType::kFloat32, {1});
    t.data<float>()[0] = in.at("x").data<float>()[0] + 1;
    out["y"] = t;
    return out;
  };
}

TEST(BaspGuardTest, HugePayloadHeaderClosesThatConnectionOnly) {
  auto server = StageServer::serve("adder", add_one());
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  for (int i = 0; i < 4; ++i) {
    int fd = connect_to((*server)->port());
    ASSERT_GE(fd, 0);
    unsigned char h[kBaspHeaderSize];
    ASSERT_EQ(::send(fd, header(h, 0x01, 0xfffffff0u), sizeof h, MSG_NOSIGNAL), static_cast<ssize_t>(sizeof h));
    // The guard closes the connection: reads drain the server's handshake, then end (0).
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
    }
    EXPECT_EQ(n, 0) << "connection was not closed";
    ::close(fd);
  }
  auto client = RemoteStage::connect("127.0.0.1", (*server)->port(), 5s);
  ASSERT_TRUE(client.ok()) << client.status().to_string();
  Tensor x(DType::kFloat32, {1});
  x.data<float>()[0] = 41;
  auto out = (*client)->call({{"x", x}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->at("y").data<float>()[0], 42.0f);
}

TEST(BaspGuardTest, ConnectToASilentPeerTimesOut) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  uint16_t port = ntohs(a.sin_port);  // the kernel accepts; nobody ever writes a byte
  auto result = std::async(std::launch::async, [port] { return RemoteStage::connect("127.0.0.1", port, 300ms); });
  ASSERT_EQ(result.wait_for(20s), std::future_status::ready) << "connect hung against a silent peer";
  auto client = result.get();
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kDeadlineExceeded) << client.status().to_string();
  ::close(listener);
}

}  // namespace
}  // namespace pyflame_rt

namespace pyflame_rt {
namespace {

// Found by fuzz/stage_wire_fuzz: dims announcing 2^39 floats with 3 bytes behind them made
// from_wire() allocate first (bad_alloc out of the stage server's actor).
TEST(RemoteWireTest, DimsAreCheckedAgainstTheBytesBeforeAllocating) {
  WireTensor w;
  w.name = "x";
  w.dtype = static_cast<int32_t>(DType::kFloat32);
  w.dims = {int64_t{1} << 39};
  w.bytes = "abc";
  auto t = from_wire(w);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("got 3 bytes"), std::string::npos) << t.status().message();
  w.dtype = static_cast<int32_t>(DType::kString);
  w.strings = {"a"};
  EXPECT_EQ(from_wire(w).status().code(), StatusCode::kInvalidArgument);
  w.dims = {1};
  auto ok = from_wire(w);
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->data<std::string>()[0], "a");
}

}  // namespace
}  // namespace pyflame_rt
