import { access, readFile } from 'node:fs/promises';
import { constants } from 'node:fs';

/**
 * The host's TSC frequency in kHz, for the guest's tsc_early_khz=. Without it, a guest
 * under load can stall at "Marking TSC unstable" while it calibrates against a timer that
 * TCG emulates slowly.
 */
export async function hostTscKhz(): Promise<number | null> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const m = /^cpu MHz\s*:\s*([0-9.]+)/m.exec(cpuinfo);
  return m ? Math.round(Number(m[1]) * 1000) : null;
}

export interface KvmFacts {
  usable: boolean;
  reason: string;
}

/**
 * Whether /dev/kvm may be tried at all. A PVM-backed KVM (kvm_pvm module) exists on some
 * cloud hosts and hangs ordinary guest kernels, so it counts as no KVM.
 */
export async function kvmFacts(): Promise<KvmFacts> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { usable: false, reason: '/dev/kvm is missing or not accessible' };
  }
  try {
    await access('/sys/module/kvm_pvm');
    return { usable: false, reason: 'KVM here is kvm_pvm, under which ordinary guests hang' };
  } catch {
    return { usable: true, reason: '/dev/kvm is available' };
  }
}
