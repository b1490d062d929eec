# Admin HTTP server (included from src/server/CMakeLists.txt).
add_library(cellar_admin_http admin_http.cc)
target_link_libraries(cellar_admin_http PUBLIC cellar_common Boost::headers Threads::Threads
                      PRIVATE cellar_frontend_net)

cellar_test(admin_http_test admin_http_test.cc)
target_link_libraries(admin_http_test PRIVATE cellar_admin_http)
