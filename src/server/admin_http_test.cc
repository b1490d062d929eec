#include "server/admin_http.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cellar::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

class AdminHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<AdminHttpServer>(
        io_, [this](const HttpRequest& req, HttpRespond respond) { Handle(req, respond); });
    server_->set_read_timeout(std::chrono::milliseconds(500));
    server_->Listen("127.0.0.1", 0);
    ASSERT_NE(server_->port(), 0);
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    std::promise<void> stopped;
    asio::post(io_, [&] {
      server_->Stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    io_.stop();
    thread_.join();
    server_.reset();
  }

  void Handle(const HttpRequest& req, HttpRespond respond) {
    {
      std::lock_guard lock(mu_);
      seen_.push_back(req);
    }
    if (req.path == "/later") {
      // Answer from a later turn of the event loop, as handlers that ask the shards do.
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
      timer->async_wait([timer, respond](boost::system::error_code) {
        respond(HttpResponse{202, "text/plain", "later"});
      });
      return;
    }
    respond(HttpResponse{200, "text/plain", "path=" + req.path});
  }

  // A connected client socket whose reads give up after 5 s, so a bug fails instead of hanging.
  tcp::socket Connect() {
    tcp::socket socket(client_io_);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
    timeval tv{5, 0};
    setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return socket;
  }

  http::response<http::string_body> Exchange(tcp::socket& socket,
                                             http::request<http::string_body> req) {
    req.set(http::field::host, "localhost");
    req.prepare_payload();
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    return res;
  }

  http::response<http::string_body> Get(const std::string& target) {
    tcp::socket socket = Connect();
    return Exchange(socket, {http::verb::get, target, 11});
  }

  std::vector<HttpRequest> Seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

  // True when the server closed the connection (EOF or reset) rather than the read timing out.
  static bool ReadsEof(tcp::socket& socket) {
    char c;
    boost::system::error_code ec;
    socket.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  asio::io_context io_;
  // Keeps io_.run() going after Stop leaves it with nothing to do, until TearDown.
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  asio::io_context client_io_;
  std::unique_ptr<AdminHttpServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<HttpRequest> seen_;
};

TEST_F(AdminHttpTest, ServesRequestsWithKeepAlive) {
  tcp::socket socket = Connect();
  for (int i = 0; i < 3; ++i) {
    auto res = Exchange(socket, {http::verb::get, "/healthz", 11});
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "path=/healthz");
    EXPECT_EQ(res[http::field::content_type], "text/plain");
    EXPECT_TRUE(res.keep_alive());
  }
  EXPECT_EQ(Seen().size(), 3u);
}

TEST_F(AdminHttpTest, PassesMethodHeadersAndBody) {
  tcp::socket socket = Connect();
  http::request<http::string_body> req{http::verb::put, "/v1/caches/x?force=1", 11};
  req.set(http::field::authorization, "Bearer abc");
  req.body() = "{\"a\":1}";
  auto res = Exchange(socket, req);
  EXPECT_EQ(res.result_int(), 200);
  auto seen = Seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "PUT");
  EXPECT_EQ(seen[0].target, "/v1/caches/x?force=1");
  EXPECT_EQ(seen[0].path, "/v1/caches/x");
  EXPECT_EQ(seen[0].query, "force=1");
  EXPECT_EQ(seen[0].authorization, "Bearer abc");
  EXPECT_EQ(seen[0].body, "{\"a\":1}");
}

TEST_F(AdminHttpTest, PercentDecodesPath) {
  auto res = Get("/v1/caches/a%20b%2Fc%3f+d/flush?q=%20");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "path=/v1/caches/a b/c?+d/flush");
  auto seen = Seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].query, "q=%20");
}

TEST_F(AdminHttpTest, InvalidEscapeIs400) {
  for (const char* target : {"/v1/caches/%zz", "/v1/caches/%4", "/v1/caches/%"}) {
    auto res = Get(target);
    EXPECT_EQ(res.result_int(), 400) << target;
    EXPECT_FALSE(res.keep_alive());
  }
  EXPECT_TRUE(Seen().empty());
}

TEST_F(AdminHttpTest, AsyncResponse) {
  tcp::socket socket = Connect();
  auto res = Exchange(socket, {http::verb::get, "/later", 11});
  EXPECT_EQ(res.result_int(), 202);
  EXPECT_EQ(res.body(), "later");
  // The connection is still usable afterwards.
  res = Exchange(socket, {http::verb::get, "/again", 11});
  EXPECT_EQ(res.body(), "path=/again");
}

TEST_F(AdminHttpTest, BodyOverOneMebibyteIs413) {
  tcp::socket socket = Connect();
  http::request<http::string_body> req{http::verb::put, "/v1/caches/big", 11};
  req.body() = std::string(2 * 1024 * 1024, 'x');
  auto res = Exchange(socket, req);
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(Seen().empty());
  EXPECT_TRUE(ReadsEof(socket));
}

TEST_F(AdminHttpTest, BodyOfExactlyOneMebibyteIsAccepted) {
  tcp::socket socket = Connect();
  http::request<http::string_body> req{http::verb::post, "/upload", 11};
  req.body() = std::string(1024 * 1024, 'x');
  auto res = Exchange(socket, req);
  EXPECT_EQ(res.result_int(), 200);
}

TEST_F(AdminHttpTest, GarbageIs400AndCloses) {
  tcp::socket socket = Connect();
  asio::write(socket, asio::buffer(std::string("\x01\x02garbage \xff\xfe nonsense\r\n\r\n")));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_NE(res.body().find("error"), std::string::npos);
  EXPECT_TRUE(ReadsEof(socket));
  // The server is still fine.
  EXPECT_EQ(Get("/healthz").result_int(), 200);
}

TEST_F(AdminHttpTest, OversizedHeaderIsRejected) {
  tcp::socket socket = Connect();
  http::request<http::string_body> req{http::verb::get, "/healthz", 11};
  req.set("X-Big", std::string(20 * 1024, 'a'));
  auto res = Exchange(socket, req);
  EXPECT_EQ(res.result_int(), 431);
}

TEST_F(AdminHttpTest, HalfSentRequestDoesNotBlockOthers) {
  tcp::socket slow = Connect();
  asio::write(slow, asio::buffer(std::string("GET /slow HTTP/1.1\r\nHost: x\r\n")));
  auto start = std::chrono::steady_clock::now();
  auto res = Get("/fast");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
  // The slow client is cut off by the read timeout (500 ms in this test), not served.
  EXPECT_TRUE(ReadsEof(slow));
  for (const auto& r : Seen()) EXPECT_NE(r.path, "/slow");
}

TEST_F(AdminHttpTest, StopClosesIdleConnectionsAndListener) {
  tcp::socket idle = Connect();
  EXPECT_EQ(Exchange(idle, {http::verb::get, "/one", 11}).result_int(), 200);
  std::promise<void> stopped;
  asio::post(io_, [&] {
    server_->Stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  EXPECT_TRUE(ReadsEof(idle));
  tcp::socket fresh(client_io_);
  boost::system::error_code ec;
  fresh.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()), ec);
  EXPECT_TRUE(ec);
}

// Smuggling defence end to end: the header is refused before the body is read, the answer says
// why, the connection closes, and nothing in the body is ever taken for a request.
TEST_F(AdminHttpTest, TransferEncodingWithContentLengthIs400AndCloses) {
  tcp::socket socket = Connect();
  const std::string hidden = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string body = "0\r\n\r\n" + hidden;
  asio::write(socket, asio::buffer("POST /v1/caches/x HTTP/1.1\r\nHost: x\r\n"
                                   "Transfer-Encoding: chunked, identity\r\n"
                                   "Content-Length: " +
                                   std::to_string(body.size()) + "\r\n\r\n" + body));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_EQ(res.body(), "{\"error\":\"request has both Transfer-Encoding and Content-Length\"}");
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(ReadsEof(socket));
  EXPECT_TRUE(Seen().empty());
}

TEST_F(AdminHttpTest, UnknownTransferCodingIs400AndCloses) {
  tcp::socket socket = Connect();
  // No "100 Continue" either: the refusal comes before the body is invited.
  asio::write(socket, asio::buffer(std::string("POST /x HTTP/1.1\r\nHost: x\r\n"
                                               "Transfer-Encoding: xchunked\r\n"
                                               "Expect: 100-continue\r\n\r\n")));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_EQ(res.body(), "{\"error\":\"unsupported transfer coding (only chunked is accepted)\"}");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(ReadsEof(socket));
  EXPECT_TRUE(Seen().empty());
}

TEST_F(AdminHttpTest, ChunkedBodyIsServed) {
  tcp::socket socket = Connect();
  asio::write(socket, asio::buffer(std::string("POST /up HTTP/1.1\r\nHost: x\r\n"
                                               "Transfer-Encoding:  Chunked \r\n\r\n"
                                               "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")));
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_TRUE(res.keep_alive());
  auto seen = Seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].body, "abcde");
}

http::request_header<> Header(unsigned version = 11) {
  http::request_header<> h;
  h.method(http::verb::post);
  h.target("/x");
  h.version(version);
  return h;
}

TEST(CheckRequestFramingTest, AcceptsNoFramingContentLengthOrExactlyChunked) {
  EXPECT_TRUE(CheckRequestFraming(Header()).ok());
  EXPECT_TRUE(CheckRequestFraming(Header(10)).ok());
  auto cl = Header();
  cl.set(http::field::content_length, "5");
  EXPECT_TRUE(CheckRequestFraming(cl).ok());
  for (const char* value :
       {"chunked", "CHUNKED", "Chunked", " chunked", "chunked\t", " chunked "}) {
    auto h = Header();
    h.set(http::field::transfer_encoding, value);
    EXPECT_TRUE(CheckRequestFraming(h).ok()) << value;
  }
}

TEST(CheckRequestFramingTest, RefusesTransferEncodingWithContentLength) {
  for (const char* value : {"chunked", "chunked, identity", "identity", "xchunked"}) {
    auto h = Header();
    h.set(http::field::transfer_encoding, value);
    h.set(http::field::content_length, "10");
    Status st = CheckRequestFraming(h);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << value;
    EXPECT_EQ(st.message(), "request has both Transfer-Encoding and Content-Length") << value;
    EXPECT_EQ(RefusalHttpStatus(st), 400);
  }
}

TEST(CheckRequestFramingTest, RefusesEveryCodingButChunked) {
  for (const char* value : {"xchunked", "chunkedx", "identity", "gzip", "gzip, chunked",
                            "chunked, identity", "chunked, chunked", "chunked,", ", chunked",
                            "chunked;q=1", "\"chunked\"", "", " ", "chunk ed", "chunked\t,"}) {
    auto h = Header();
    h.set(http::field::transfer_encoding, value);
    Status st = CheckRequestFraming(h);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << "[" << value << "]";
    EXPECT_EQ(st.message(), "unsupported transfer coding (only chunked is accepted)") << value;
  }
  // Two fields, even if each alone would do: a proxy may use either one.
  auto twice = Header();
  twice.insert(http::field::transfer_encoding, "chunked");
  twice.insert(http::field::transfer_encoding, "chunked");
  EXPECT_FALSE(CheckRequestFraming(twice).ok());
  auto split = Header();
  split.insert(http::field::transfer_encoding, "identity");
  split.insert(http::field::transfer_encoding, "chunked");
  EXPECT_FALSE(CheckRequestFraming(split).ok());
}

TEST(CheckRequestFramingTest, RefusesTransferEncodingInHttp10) {
  auto h = Header(10);
  h.set(http::field::transfer_encoding, "chunked");
  Status st = CheckRequestFraming(h);
  EXPECT_EQ(st.message(), "Transfer-Encoding in an HTTP/1.0 request");
  EXPECT_EQ(RefusalHttpStatus(st), 400);
}

// Parses `bytes`, expecting a refusal; returns its HTTP status and message.
std::pair<int, std::string> Refused(const std::string& bytes) {
  auto r = ParseHttpRequest(bytes);
  EXPECT_FALSE(r.ok()) << bytes;
  if (r.ok()) return {200, ""};
  return {RefusalHttpStatus(r.status()), r.status().message()};
}

TEST(ParseHttpRequestTest, PlainGet) {
  const std::string bytes =
      "GET /v1/caches/a%20b?x=1 HTTP/1.1\r\nHost: x\r\n"
      "Authorization: Bearer t\r\n\r\n";
  auto r = ParseHttpRequest(bytes);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->request.method, "GET");
  EXPECT_EQ(r->request.target, "/v1/caches/a%20b?x=1");
  EXPECT_EQ(r->request.path, "/v1/caches/a b");
  EXPECT_EQ(r->request.query, "x=1");
  EXPECT_EQ(r->request.authorization, "Bearer t");
  EXPECT_EQ(r->request.body, "");
  EXPECT_TRUE(r->keep_alive);
  EXPECT_EQ(r->consumed, bytes.size());
}

TEST(ParseHttpRequestTest, PostWithContentLengthAndPipelining) {
  const std::string first = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  const std::string second = "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto r = ParseHttpRequest(first + second);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->request.body, "hello");
  EXPECT_EQ(r->consumed, first.size());
  auto next = ParseHttpRequest(std::string_view(first + second).substr(r->consumed));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->request.path, "/b");
  EXPECT_FALSE(next->keep_alive);
  EXPECT_EQ(next->consumed, second.size());
}

TEST(ParseHttpRequestTest, ChunkedPost) {
  const std::string bytes =
      "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
  auto r = ParseHttpRequest(bytes + "GET /next HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->request.body, "hello world");
  EXPECT_EQ(r->consumed, bytes.size());
}

TEST(ParseHttpRequestTest, RefusesSmugglingFramings) {
  const std::string start = "POST /a HTTP/1.1\r\nHost: x\r\n";
  const std::pair<int, std::string> both{400,
                                         "request has both Transfer-Encoding and Content-Length"};
  const std::pair<int, std::string> coding{
      400, "unsupported transfer coding (only chunked is accepted)"};
  // Transfer-Encoding first: Beast alone would take the Content-Length, a proxy the chunks.
  EXPECT_EQ(Refused(start + "Transfer-Encoding: chunked, identity\r\nContent-Length: 4\r\n\r\n"
                            "0\r\n\r\n"),
            both);
  EXPECT_EQ(Refused(start + "Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\nabcd"), both);
  EXPECT_EQ(Refused(start + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), coding);
  EXPECT_EQ(Refused(start + "Transfer-Encoding: identity\r\n\r\n"), coding);
  EXPECT_EQ(Refused(start + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), coding);
  EXPECT_EQ(Refused(start + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "0\r\n\r\n"),
            coding);
  EXPECT_EQ(Refused("POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            (std::pair<int, std::string>{400, "Transfer-Encoding in an HTTP/1.0 request"}));
  // Folded onto a second line, the value is `chunked` to Beast but may be empty to a proxy.
  EXPECT_EQ(Refused(start + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
            (std::pair<int, std::string>{400, "obsolete line folding in request header"}));
  EXPECT_EQ(Refused(start + "X-A: b\r\n\tc\r\n\r\n").second,
            "obsolete line folding in request header");
  // Beast itself refuses these orders and repeats (still 400, and the connection closes).
  EXPECT_EQ(
      Refused(start + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").first,
      400);
  EXPECT_EQ(
      Refused(start + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n").first,
      400);
  EXPECT_EQ(Refused(start + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "0\r\n\r\n")
                .first,
            400);
}

TEST(ParseHttpRequestTest, Limits) {
  const std::string big_header =
      "GET / HTTP/1.1\r\nX-Big: " + std::string(kAdminHeaderLimit, 'a') + "\r\n\r\n";
  EXPECT_EQ(Refused(big_header),
            (std::pair<int, std::string>{431, "request header larger than 16 KiB"}));
  const std::pair<int, std::string> too_big{413, "request body larger than 1 MiB"};
  EXPECT_EQ(Refused("POST / HTTP/1.1\r\nContent-Length: " + std::to_string(kAdminBodyLimit + 1) +
                    "\r\n\r\n"),
            too_big);
  // A chunked body is counted as it arrives.
  const std::string chunk = "100000\r\n" + std::string(0x100000, 'x') + "\r\n";
  EXPECT_EQ(Refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk +
                    "1\r\nx\r\n0\r\n\r\n"),
            too_big);
  auto exact = ParseHttpRequest("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk +
                                "0\r\n\r\n");
  ASSERT_TRUE(exact.ok()) << exact.status().ToString();
  EXPECT_EQ(exact->request.body.size(), kAdminBodyLimit);
}

TEST(ParseHttpRequestTest, GarbageTargetsAndIncompleteRequests) {
  EXPECT_EQ(Refused("\x01\x02garbage \xff\xfe nonsense\r\n\r\n"),
            (std::pair<int, std::string>{400, "malformed HTTP request"}));
  EXPECT_EQ(Refused("GET http://x/ HTTP/1.1\r\n\r\n"),
            (std::pair<int, std::string>{400, "request target must be a path"}));
  EXPECT_EQ(Refused("GET /%zz HTTP/1.1\r\n\r\n"),
            (std::pair<int, std::string>{400, "invalid percent-encoding in path"}));
  // The client went away: nothing to answer.
  EXPECT_EQ(Refused("").first, 0);
  EXPECT_EQ(Refused("GET / HTTP/1.1\r\nHost: x\r\n").first, 0);
  EXPECT_EQ(Refused("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc").first, 0);
  EXPECT_EQ(Refused("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab").first, 0);
}

TEST(AdminHttpListenTest, PortInUseThrowsClearError) {
  asio::io_context io;
  auto handler = [](const HttpRequest&, HttpRespond respond) { respond({}); };
  AdminHttpServer first(io, handler);
  first.Listen("127.0.0.1", 0);
  AdminHttpServer second(io, handler);
  try {
    second.Listen("127.0.0.1", first.port());
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cellar::server
