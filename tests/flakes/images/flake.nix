# A stand-in for a NixOS flake, for bifrost's build tests: no nixpkgs, only
# plain derivations built with the host's /bin/sh, shaped like what
# nixpkgs' image builders expose (`config.system.build.images.<variant>`
# with `passthru.filePath`, and `config.system.build.vm`).
#
# Knobs are files beside this flake, written by the tests into their own
# copy (evaluation stays pure): `seed` changes the images' contents, `fail`
# = `raw` makes the raw image's builder fail, `slow` makes builds sleep that
# many seconds first.
{
  description = "bifrost test flake: tiny sparse images in the shape of nixpkgs' image builders";

  outputs = {self}: let
    system = "x86_64-linux";
    knob = name: default:
      if builtins.pathExists (./. + "/${name}")
      then builtins.replaceStrings ["\n"] [""] (builtins.readFile (./. + "/${name}"))
      else default;
    seed = knob "seed" "0";
    fail = knob "fail" "";
    slow = knob "slow" "0";
    host = "testhost";

    # An image of SIZE MiB holding 2 MiB of data at its start and 1 MiB at its
    # end, with a hole between: the store file is sparse, as real disk images are.
    image = {
      variant,
      file,
      size,
      shouldFail ? false,
    }:
      derivation {
        name = "nixos-image-${variant}";
        inherit system seed slow;
        failHere =
          if shouldFail
          then "1"
          else "";
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [
          "-c"
          ''
            set -e
            echo "building ${variant} image (seed $seed)"
            sleep "$slow"
            if [ -n "$failHere" ]; then
              echo "partitioning the disk"
              echo "mkfs.ext4: Could not allocate block in ext2 filesystem" >&2
              exit 3
            fi
            mkdir -p "$out/$(dirname ${file})"
            f="$out/${file}"
            truncate -s ${toString size}M "$f"
            yes "bifrost ${variant} $seed" | head -c 2097152 | dd of="$f" conv=notrunc status=none
            yes "tail ${variant} $seed" | head -c 1048576 | dd of="$f" bs=1M seek=${toString (size - 1)} conv=notrunc status=none
            echo "wrote ${file}"
          ''
        ];
      }
      // {passthru.filePath = file;};

    vm = derivation {
      name = "nixos-vm";
      inherit system seed;
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      args = [
        "-c"
        ''
          set -e
          # Like qemu-vm.nix: bin/run-<host>-vm is a link to the runner script.
          mkdir -p "$out/bin" "$out/libexec"
          printf '#!/bin/sh\necho "run ${host} vm (seed %s)"\n' "$seed" > "$out/libexec/run-vm"
          chmod +x "$out/libexec/run-vm"
          ln -s ../libexec/run-vm "$out/bin/run-${host}-vm"
        ''
      ];
    };
  in {
    nixosConfigurations.${host}.config.system = {
      nixos.version = "26.05.20260819.5880666";
      build = {
        inherit vm;
        images = {
          raw-efi = image {
            variant = "raw-efi";
            file = "nixos-image-raw-efi.raw";
            size = 64;
            shouldFail = fail == "raw";
          };
          iso-installer = image {
            variant = "iso-installer";
            file = "iso/nixos-installer.iso";
            size = 48;
          };
          qemu-efi = image {
            variant = "qemu-efi";
            file = "nixos-image-qemu-efi.qcow2";
            size = 32;
          };
        };
      };
    };
  };
}
