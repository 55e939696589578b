# node-gyp build of the oneDNN addon. Needs a C++17 compiler, Node's headers (npm's
# nodedir) and oneDNN's headers + library (Debian: apt-get install libdnnl-dev).
{
  "targets": [
    {
      "target_name": "tfjs_native",
      "sources": ["native/addon.cc", "native/conv.cc", "native/matmul.cc", "native/eltwise.cc", "native/fused.cc", "native/attention.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
