module kube-elector/tools/pause

go 1.22
