%%% @doc The spawned C node's TLS command-line flags, from the application
%%% environment key `tls' of `reckon_cnode'.
%%%
%%% Used by {@link reckon_cnode_port} when it builds the C node's command
%%% line in spawn mode. The value of `tls' is one of:
%%% <ul>
%%% <li>`undefined' (the default): plain TCP, no flags;</li>
%%% <li>`dist': this node's own `-ssl_dist_optfile', its server options (the
%%%   C node uses one certificate both ways);</li>
%%% <li>a map with the optfile's keys: `certfile' (required), `keyfile',
%%%   `cacertfile', `verify' (`verify_peer', the default, or `verify_none'),
%%%   `server_name' (a name servers' certificates must carry) and `versions'
%%%   (the lowest one is the C node's minimum).</li>
%%% </ul>
%%% @end
-module(reckon_cnode_tls).

-export([args/1]).

%% @doc The C node's TLS flags for the value `Tls' of the application env
%% `tls': `{ok, Flags}', or `{error, {bad_env, tls, What}}' naming what is
%% wrong with it (a key whose value cannot be used, an unreadable
%% `-ssl_dist_optfile', or `dist' on a node started without one).
-spec args(term()) -> {ok, [string()]} | {error, {bad_env, tls, term()}}.
args(undefined) ->
    {ok, []};
args(dist) ->
    case init:get_argument(ssl_dist_optfile) of
        {ok, [[File] | _]} ->
            case file:consult(File) of
                {ok, [Opts]} when is_list(Opts) ->
                    Server = proplists:get_value(server, Opts, []),
                    Keys = [certfile, keyfile, cacertfile, verify, versions],
                    args(maps:from_list([{K, V} || {K, V} <- Server,
                                                   lists:member(K, Keys)]));
                Other ->
                    {error, {bad_env, tls, {ssl_dist_optfile, File, Other}}}
            end;
        error ->
            {error, {bad_env, tls, {dist, no_ssl_dist_optfile}}}
    end;
args(#{certfile := Cert} = M) when is_list(Cert) ->
    try
        Str = fun(K, Flag) ->
                      case maps:get(K, M, undefined) of
                          undefined -> [];
                          V when is_list(V) -> [Flag, V];
                          V when is_binary(V) -> [Flag, binary_to_list(V)];
                          V -> throw({K, V})
                      end
              end,
        Verify = case maps:get(verify, M, verify_peer) of
                     verify_peer -> [];
                     verify_none -> ["--tls-verify", "none"];
                     V -> throw({verify, V})
                 end,
        Min = case maps:get(versions, M, undefined) of
                  undefined -> [];
                  Vs when is_list(Vs), Vs =/= [] ->
                      case lists:member('tlsv1.2', Vs) of
                          true -> ["--tls-min-version", "1.2"];
                          false when Vs =:= ['tlsv1.3'] -> ["--tls-min-version", "1.3"];
                          false -> throw({versions, Vs})
                      end;
                  Vs -> throw({versions, Vs})
              end,
        {ok, ["--tls-cert", Cert] ++ Str(keyfile, "--tls-key")
             ++ Str(cacertfile, "--tls-cacert") ++ Verify
             ++ Str(server_name, "--tls-server-name") ++ Min}
    catch
        throw:Bad -> {error, {bad_env, tls, Bad}}
    end;
args(Other) ->
    {error, {bad_env, tls, Other}}.
