/**
 * The Envoy release the stand-in imitates. The build SHA is a fixed, recognisable placeholder (all zeros
 * but a trailing 5 for issue 5) so a version check that parses `<sha>/<version>/<status>/<type>/<ssl>` works.
 */
export const envoyRelease = { major: 1, minor: 37, patch: 0 } as const;
export const envoyBuildSha = '0000000000000000000000000000000000000005';
export const envoyVersion = `${envoyBuildSha}/${envoyRelease.major}.${envoyRelease.minor}.${envoyRelease.patch}/Clean/RELEASE/BoringSSL`;
/** `HOT_RESTART_VERSION.<sizeof(SharedMemory)>` as Envoy prints it for `--hot-restart-version`. */
export const hotRestartVersion = '11.104';
