/* libcurl for Swift. curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic,
 * which Swift cannot call; these typed inline wrappers (one per argument type) can be. */
#ifndef ENGINE_RUNTIME_CCURL_SHIM_H
#define ENGINE_RUNTIME_CCURL_SHIM_H

#include <curl/curl.h>

typedef size_t (*ert_curl_data_callback)(char *data, size_t size, size_t count, void *context);
typedef int (*ert_curl_xferinfo_callback)(void *context, curl_off_t dltotal, curl_off_t dlnow,
                                          curl_off_t ultotal, curl_off_t ulnow);

typedef int (*ert_curl_sockopt_callback)(void *context, curl_socket_t fd, curlsocktype purpose);

static inline CURLcode ert_curl_setopt_sockopt_callback(CURL *h, ert_curl_sockopt_callback v) {
    return curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, v);
}
static inline CURLcode ert_curl_setopt_long(CURL *h, CURLoption o, long v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode ert_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode ert_curl_setopt_string(CURL *h, CURLoption o, const char *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode ert_curl_setopt_pointer(CURL *h, CURLoption o, void *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode ert_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode ert_curl_setopt_data_callback(CURL *h, CURLoption o, ert_curl_data_callback v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode ert_curl_setopt_xferinfo_callback(CURL *h, ert_curl_xferinfo_callback v) {
    return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, v);
}
static inline CURLcode ert_curl_getinfo_long(CURL *h, CURLINFO i, long *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode ert_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode ert_curl_getinfo_string(CURL *h, CURLINFO i, const char **v) {
    return curl_easy_getinfo(h, i, (char **)v);
}
static inline CURLcode ert_curl_getinfo_pointer(CURL *h, CURLINFO i, void **v) {
    return curl_easy_getinfo(h, i, (char **)v);
}
static inline CURLMcode ert_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) {
    return curl_multi_setopt(m, o, v);
}

#endif
