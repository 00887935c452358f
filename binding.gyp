{
  "targets": [
    {
      "target_name": "shmstore",
      "sources": [
        "native/core/clients.cpp",
        "native/core/copy.cpp",
        "native/core/futex.cpp",
        "native/core/objects.cpp",
        "native/core/segment.cpp",
        "native/core/tables.cpp",
        "native/addon/addon.cpp",
        "native/addon/js_errors.cpp",
        "native/addon/session.cpp",
        "native/addon/store_wrap.cpp",
        "native/addon/waiter.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/core"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
