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
