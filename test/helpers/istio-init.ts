/** The `istio-init` container's arguments exactly as Istio's injector writes them (`-x ""` is an empty argument). */
export const istioInitArguments: readonly string[] = [
  '-p',
  '15001',
  '-z',
  '15006',
  '-u',
  '1337',
  '-m',
  'REDIRECT',
  '-i',
  '*',
  '-x',
  '',
  '-b',
  '*',
  '-d',
  '15090,15021,15020',
];
