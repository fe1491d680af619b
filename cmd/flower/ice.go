package main

import "github.com/pion/webrtc/v4"

func rtcICEServer(u string) webrtc.ICEServer { return webrtc.ICEServer{URLs: []string{u}} }
