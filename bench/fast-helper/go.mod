module choria-provisioner/bench/fast-helper

go 1.22
